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
    assert "usage: vssl" in capsys.readouterr().out


def test_every_benchmark_is_listed_in_the_bench_summary(capsys):
    assert len(BENCHES) >= 7
    with pytest.raises(SystemExit):
        main(["--help"])
    summary = capsys.readouterr().out
    assert all(name in summary for name in BENCHES)
