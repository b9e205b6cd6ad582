"""`vssl bench tce` at toy sizes: it runs end to end, reports ratios per bank size, and --record writes them."""

from __future__ import annotations

import json

import pytest

from benchmark.cli import main


@pytest.mark.slow
def test_bench_tce_smoke(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(
        [
            "bench",
            "tce",
            "--record",
            "--sizes",
            "500",
            "3000",
            "--negatives",
            "32",
            "--batch",
            "4",
            "--resolution",
            "32",
            "--backbone",
            "resnet10t",
            "--steps",
            "1",
            "--repeats",
            "1",
            "--device",
            "cpu",
        ]
    )
    out = capsys.readouterr().out
    assert rc in (0, 1) and "(mining+update)/step" in out and "goal:" in out
    figures = json.loads((tmp_path / "results" / "perf" / "tce.json").read_text())
    for n in (500, 3000):
        assert figures[f"bank_{n}_bank_mb"] == pytest.approx(n * 128 * 4 / 2**20, abs=0.05)
        ratio = figures[f"bank_{n}_ratio_mining_update"]
        expected = (figures[f"bank_{n}_mining_topk_ms"] + figures[f"bank_{n}_update_ms"]) / figures["step_ms"]
        assert ratio == pytest.approx(expected, rel=1e-9)  # recorded at full precision: exact on any machine
    assert figures["meets_goal"] == (rc == 0)


def test_bench_tce_rejects_bad_sizes(capsys):
    assert main(["bench", "tce", "--sizes", "1"]) == 2
    assert "--sizes" in capsys.readouterr().err
