"""vssl-bench: the harness core.

Where things live (see docs/architecture.md):
  config.py      typed dataclass configs, YAML loading, dotted overrides
  registry.py    method and sampler registries (+ the ``vssl.methods`` entry points)
  method.py      the contract every SSL objective honours
  backbones.py   one factory for timm 2D, torchvision 3D and inflated 2D->3D backbones
  data/          synthetic generator, dataset indexes, decoding, samplers, transforms
  train.py       pre-training loop (resumable, progress bar)
  evaluation/    feature extraction, linear probe, kNN, fine-tuning
  rundir.py      the run-directory contract (config, scalars, checkpoints, metrics)
  sweeps.py      the sweep-file grammar and cell expansion
  launch/        running cells: local, submitit (SLURM)
  results/       collecting runs into tables, plots and reports
"""

__version__ = "0.1.0"
