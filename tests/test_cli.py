"""Every command's --help prints and exits 0 (argparse %-formats help text: a stray '%' breaks it)."""

from __future__ import annotations

import pytest

from benchmark.cli import build_parser, main


def _subcommands(parser) -> dict:
    return next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices


COMMANDS = sorted(_subcommands(build_parser()))
BENCHES = sorted(_subcommands(_subcommands(build_parser())["bench"]))


@pytest.mark.parametrize("argv", [[], *([c] for c in COMMANDS), *(["bench", b] for b in BENCHES)], ids=" ".join)
def test_help_prints_and_exits_zero(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: vssl" in out and "%%" not in out  # an escaped '%' printed as typed: escaped where not formatted


def test_only_benchmarks_that_write_on_request_offer_record(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "gpu", "--help"])
    assert "--record" not in capsys.readouterr().out  # it always writes, stage by stage, under --out
    with pytest.raises(SystemExit):
        main(["bench", "tce", "--help"])
    assert "--record" in capsys.readouterr().out


def test_every_benchmark_is_listed_in_the_bench_summary(capsys):
    assert len(BENCHES) >= 7
    with pytest.raises(SystemExit):
        main(["--help"])
    summary = capsys.readouterr().out
    assert all(name in summary for name in BENCHES)


def test_a_user_error_from_a_loader_worker_prints_its_own_line():
    """torch re-raises a worker's UserError with the worker's traceback in its message; the CLI prints the line."""
    from benchmark.cli import one_line
    from benchmark.errors import UserError

    wrapped = UserError(
        "Caught UserError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "loader.py", line 131, in collate\n    raise UserError(\n'
        "benchmark.errors.UserError: the sampler's samples differ in shape under 'clip'\n"
    )
    assert one_line(wrapped) == "the sampler's samples differ in shape under 'clip'"
    assert one_line(UserError("plain")) == "plain"


def test_pretrain_prints_the_pretext_verdict_in_one_line():
    from benchmark.commands.pretrain import pretext_line

    learned = {"learned": True, "rule": "held-out accuracy >= 0.2", "step0": {"value": 0.1}, "final": {"value": 0.5}}
    assert pretext_line(learned) == "pretext (held-out accuracy >= 0.2): learned, step 0 0.100 -> end 0.500"
    missed = {**learned, "learned": False, "final": {"value": 0.12}}
    assert "did not learn its pretext task, step 0 0.100 -> end 0.120" in pretext_line(missed)
    assert pretext_line({"exempt": "control"}) == "pretext: control"


@pytest.mark.parametrize(
    "argv, usage, message",
    [
        (["pretrain", "--bogus"], "usage: vssl pretrain", "unrecognized arguments: --bogus"),
        (["bench", "tce", "--bogus"], "usage: vssl bench tce", "unrecognized arguments: --bogus"),
        (["bench", "collect", "--videos", "0"], "usage: vssl bench collect", "argument --videos: 0: must be 1 or more"),
        (["bench", "tce", "--resolution", "-1"], "usage: vssl bench tce", "must be 1 or more"),
    ],
)
def test_bad_options_get_the_commands_own_usage_and_one_error_line(argv, usage, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith(usage) and message in err.strip().splitlines()[-1]


def test_status_needs_at_least_one_error_line(tmp_path, capsys):
    assert main(["status", str(tmp_path), "--lines", "0"]) == 2
    assert "--lines 0" in capsys.readouterr().err


def test_a_full_disk_is_one_line_even_when_the_write_names_no_file(tmp_path, capsys, monkeypatch):
    """write() or fsync() on a full disk raises OSError(ENOSPC) without a file name: atomic writes name the file
    they were writing, and an ENOSPC that still names none is one line, not a traceback."""
    import errno
    import os

    from benchmark.rundir import atomic_write_text

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as exc:
        atomic_write_text(tmp_path / "table.md", "x" * 100_000)
    monkeypatch.undo()
    assert exc.value.filename == str(tmp_path / "table.md") and list(tmp_path.iterdir()) == []

    from benchmark.commands import status

    def nameless(args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(status, "handle", nameless)
    assert main(["status", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vssl status: error: No space left on device: free some space") and "\n" not in err


@pytest.mark.parametrize(
    "exc",
    [
        __import__("concurrent.futures.process", fromlist=["x"]).BrokenProcessPool(
            "A process in the process pool was terminated abruptly while the future was running or pending."
        ),
        RuntimeError("DataLoader worker (pid(s) 8639) exited unexpectedly"),
    ],
)
def test_a_killed_worker_is_one_line(exc, tmp_path, capsys, monkeypatch):
    """kill -9 of an encoding (prepare, check-data, synth) or decoding (DataLoader) worker: one line saying a
    worker died and how to go on, exit 1; any other RuntimeError is a fault and keeps its traceback."""
    from benchmark.commands import status

    def dies(args):
        raise exc

    monkeypatch.setattr(status, "handle", dies)
    assert main(["status", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vssl status: error: a worker process died (") and "killed, or out of memory?" in err
    assert "\n" not in err

    def fault(args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(status, "handle", fault)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["status", str(tmp_path)])


def test_a_worker_killed_while_synth_renders_ends_the_command_instead_of_hanging(tmp_path, monkeypatch):
    """multiprocessing.Pool.imap_unordered waited forever for the videos of a killed worker (1552 of 1560, a
    reviewer's kill -9); the executor raises BrokenProcessPool, which the CLI prints in one line."""
    from concurrent.futures.process import BrokenProcessPool

    from benchmark.data import synthetic

    monkeypatch.setattr(synthetic, "_make_one", _dies_at_once)
    with pytest.raises(BrokenProcessPool):
        synthetic.generate(tmp_path / "s", synthetic.SynthConfig(classes=2), workers=2, progress=False)


def _dies_at_once(task):  # a worker killed while it renders (module level: the executor pickles it by name)
    import os

    os._exit(9)


def test_a_file_name_that_is_not_utf8_is_printed_escaped_on_a_strict_terminal(tmp_path, monkeypatch):
    """An en_US.UTF-8 terminal's stdout is strict UTF-8: printing a Latin-1 file name (surrogates) raised
    UnicodeEncodeError in check-data and prepare; the CLI's streams escape it instead."""
    import io
    import sys

    from benchmark.commands import status

    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="utf-8", errors="strict"))
    name = b"good_\xe9.avi".decode("utf-8", "surrogateescape")
    monkeypatch.setattr(status, "handle", lambda args: print(f"failed: {name}") or 0)
    assert main(["status", str(tmp_path)]) == 0
    sys.stdout.flush()
    assert raw.getvalue() == b"failed: good_\\udce9.avi\n"


def test_a_synth_summary_that_is_not_an_object_is_regenerated(tmp_path):
    """An OUT/synth.json holding `[]` (a hand edit, a broken copy) was an AttributeError; it now means "no
    complete set here", so vssl synth writes the set again."""
    from benchmark.data import synthetic

    (tmp_path / synthetic.SUMMARY_FILE).write_text("[]")
    assert synthetic._existing_summary(tmp_path, synthetic.SynthConfig(classes=2)) is None
