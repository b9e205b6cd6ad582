"""Collecting run directories into tables, plots and reports (``vssl table``, ``vssl report``).

- collect.py   every run directory of a sweep -> one pandas DataFrame (+ per-video results)
- table.py     Table 1: rows method x backbone x pre-training, columns dataset x protocol; renderers
- stats.py     mean +- std with a t-interval; the paired bootstrap for "method minus random init"
- published.py the paper's Table 1 and the rules for comparing with it
- plots.py     seaborn figures (PNG + PDF)
- report.py    README.md with the table, figures, protocol and provenance
- fakeruns.py  generated run directories for tests and ``vssl bench collect``
"""

TABLE_FORMATS = ("terminal", "md", "latex", "csv")  # what `vssl table --format` writes
