"""vssl bench methods: a method's named parts (Method.perf_parts) are timed and shown beside its own share."""

from __future__ import annotations

import pytest

from benchmark.cli import main


@pytest.mark.slow
def test_the_gan_generator_is_timed_on_its_own(capsys):
    rc = main(
        ["bench", "methods", "--methods", "videogan", "tce", "--resolution", "32", "--batch", "2", "--repeats", "1"]
    )
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(("videogan ", "tce "))}
    assert rc == 0 and set(rows) == {"videogan", "tce"}, out
    assert "generator " in rows["videogan"] and "ms (" in rows["videogan"]  # e.g. "generator 12 ms (3.4%)"
    assert rows["tce"].rstrip().endswith("-")  # no parts declared


def test_a_too_small_bench_case_is_one_line(capsys):
    """r3d_18 at 16 px ends in a 1x1x1 map: with one sample BatchNorm cannot train, said in one line."""
    rc = main(["bench", "methods", "--methods", "videogan", "--resolution", "16", "--batch", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot train at --resolution 16 with batch 1" in err and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("vssl bench: error: method 'videogan'"), err  # after the bar
