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
