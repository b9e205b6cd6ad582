"""`vssl bench collect` on a few generated runs (the 1,000-run figure is recorded in results/perf/)."""

import argparse
import json

from benchmark.perf import collect as bench


def test_bench_collect_prints_and_records_its_figures(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = argparse.Namespace(runs=20, videos=30, repeats=1, n_boot=200, dir=None, record=True)
    assert bench.run(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("collected 20 run directories into a 20-row table in ")
    figures = json.loads((tmp_path / "results" / "perf" / "collect.json").read_text())
    assert figures["runs"] == 20 and figures["table_rows"] == 20 and figures["meets_goal"] is True
    assert "| collect_table_s_median |" in (tmp_path / "results" / "perf" / "collect.md").read_text()
