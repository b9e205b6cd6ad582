"""Performance benchmarks behind ``vssl bench NAME``: one module per NAME
(data, tce, methods, collect, status, ...), each exposing
``add_arguments(parser)`` and ``run(args) -> int``. They print figures (ratios
measured in one run) and can write them to results/perf/ with ``--record``."""
