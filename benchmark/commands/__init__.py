"""One module per ``vssl`` subcommand; each exposes ``register(subparsers)``
and sets ``handler`` on its parser. Keep module imports light (no torch)."""
