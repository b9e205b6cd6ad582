"""Running sweep cells: ``cell.py`` runs one cell's stages in a run directory;
``local.py`` runs a sweep on this machine (in process or via submitit's local
executor); the SLURM launcher builds on the same ``run_cell``.
"""

CLUSTERS = ("local", "debug", "slurm")  # where `vssl sweep --cluster` runs cells
