"""vssl tb: TensorBoard over a sweep (cells named by their labels) or over run directories."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "tb",
        help="TensorBoard over a sweep or runs, each cell named by its label",
        description="Start TensorBoard on the event files every run writes (RUN/tb/): a sweep folder's cells are "
        "named by their labels from sweep.json (e.g. 'method=tce seed=0'), other folders by their names. "
        "--print only prints the exact command.",
    )
    p.add_argument("paths", nargs="+", help="sweep folder(s) (runs/<name>) or run directories")
    p.add_argument("--port", type=int, default=6006, help="port (default 6006)")
    p.add_argument("--print", dest="print_only", action="store_true", help="print the tensorboard command, run nothing")
    p.set_defaults(handler=handle)


def logdir_spec(paths: list) -> str:
    """'label:dir,label:dir' for tensorboard --logdir_spec: one entry per run that has event files."""
    import json
    from pathlib import Path

    from benchmark.errors import UserError

    entries = []
    for root in map(Path, paths):
        if not root.exists():
            raise UserError(f"{root} does not exist: pass a sweep folder (runs/<name>) or a run directory")
        manifest = root / "sweep.json"
        try:
            labels = json.loads(manifest.read_text()).get("cells", {}) if manifest.exists() else {}
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
            raise UserError(f"{manifest} does not parse as a sweep manifest ({exc})") from None
        if not isinstance(labels, dict) or not all(isinstance(e, dict) for e in labels.values()):
            raise UserError(f"{manifest}: 'cells' should map cell ids to their entries")
        runs = sorted((root / "cells").iterdir()) if (root / "cells").is_dir() else [root]
        for run in runs:
            if (run / "tb").is_dir():
                if "," in str(run / "tb"):  # --logdir_spec splits on commas and has no escape
                    raise UserError(f"{run / 'tb'}: TensorBoard cannot take a path with a comma; rename the folder")
                label = labels.get(run.name, {}).get("label") or run.name
                if len(paths) > 1 and run != root:  # two sweeps' cells may share a label: name the sweep too
                    label = f"{root.resolve().name}/{label}"
                entries.append((label.replace(",", ";").replace(":", "="), run / "tb"))
    if not entries:
        raise UserError(f"no TensorBoard event files under {', '.join(map(str, paths))} (runs write them to RUN/tb/)")
    return ",".join(f"{label}:{path}" for label, path in entries)


def handle(args) -> int:
    import shlex
    import shutil
    import subprocess
    import sys

    from benchmark.errors import UserError

    if not 1 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: a TCP port is 1..65535")
    spec = logdir_spec(args.paths)
    command = [shutil.which("tensorboard") or "tensorboard", "--logdir_spec", spec, "--port", str(args.port)]
    if args.print_only:
        print(shlex.join(command))
        return 0
    if shutil.which("tensorboard") is None:
        raise UserError("tensorboard is not on PATH: pip install tensorboard (a vssl-bench dependency)")
    print(f"TensorBoard on http://localhost:{args.port} (Ctrl-C stops it)", file=sys.stderr)
    return subprocess.call(command)
