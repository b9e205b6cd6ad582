"""`vssl table` and `vssl report` through the real CLI entry point."""

import io

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.commands.table import print_quick_table
from benchmark.results.fakeruns import FakeRun, write_fake_run, write_fake_sweep


def test_table_csv_to_stdout_skips_listed_on_stderr(table1_sweep, capsys):
    bad = sorted((table1_sweep / "cells").iterdir())[0]
    (bad / "metrics.json").write_text('{"pretrain": ')
    assert main(["table", str(table1_sweep), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    df = pd.read_csv(io.StringIO(out))
    assert len(df) == 4 and sorted(df["synthetic linear top-1 n"]) == [2, 3, 3, 3]
    assert err.strip().startswith(f"skipped {bad.name}: corrupt: metrics.json does not parse (Expecting value")
    assert len(err.strip().splitlines()) == 1


def test_table_out_file_and_terminal(table1_sweep, tmp_path, capsys):
    out = tmp_path / "t" / "table.tex"
    assert main(["table", str(table1_sweep), "--format", "latex", "--out", str(out)]) == 0
    assert "\\toprule" in out.read_text()
    assert main(["table", str(table1_sweep), "--n-boot", "500"]) == 0
    text = capsys.readouterr().out
    assert "synthetic linear top-1" in text and "Paired difference vs random init" in text


@pytest.mark.parametrize(
    "setup,message",
    [
        ("empty", "holds no run directories"),
        ("mixed", "mixes runs of different sweeps"),
        ("corrupt", "none of its 1 run directories is usable"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, setup, message):
    root = tmp_path / "runs"
    root.mkdir()
    if setup == "mixed":
        write_fake_sweep(root / "a", [FakeRun()], name="a")
        write_fake_sweep(root / "b", [FakeRun()], name="b")
    if setup == "corrupt":
        run = write_fake_run(root / "cells" / "x", FakeRun())
        (run.path / "metrics.json").write_text('{"pretrain": {"steps": 3}, "linear/synthetic/split1": {"top1": 4')
    assert main(["table", str(root)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("vssl table: error: ") and message in err


def test_split_recipes_flag(tmp_path, capsys):
    specs = [FakeRun(seed=s, defaults={"method.temperature": 0.07 if s < 2 else 0.1}) for s in (0, 1, 2)]
    sweep = write_fake_sweep(tmp_path / "s", specs)
    assert main(["table", str(sweep), "--format", "csv"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "method.temperature" in err and "--split-recipes" in err
    assert main(["table", str(sweep), "--format", "csv", "--split-recipes"]) == 0
    assert sorted(pd.read_csv(io.StringIO(capsys.readouterr().out))["variant"]) == [
        "temperature=0.07",
        "temperature=0.1",
    ]
    out = tmp_path / "report"
    assert main(["report", str(sweep), "--out", str(out), "--no-figures", "--n-boot", "200", "--split-recipes"]) == 0
    assert "temperature=0.1" in (out / "table.md").read_text()


def test_quick_table_after_a_sweep(table1_sweep, tmp_path, capsys):
    print_quick_table(table1_sweep)
    assert "TCE" in capsys.readouterr().out
    (tmp_path / "nothing").mkdir()
    print_quick_table(tmp_path / "nothing")  # never raises after a sweep: says why there is no table
    assert capsys.readouterr().out.startswith("no table: ")


def test_report_without_figures(table1_sweep, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(table1_sweep), "--out", str(out), "--no-figures", "--n-boot", "500"]) == 0
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "README.md",
        "paired.md",
        "runs.csv",
        "table.csv",
        "table.md",
        "table.tex",
        "table.txt",
    ]
    readme = (out / "README.md").read_text()
    for section in (
        "## Table 1",
        "## Paired difference vs random init",
        "## Protocol of every column",
        "## Provenance",
        "## Configuration of every row",
    ):
        assert section in readme
    assert "commit `" + "0" * 40 + "`, 12 runs" in readme  # the runs' recorded commit
    assert "- **TCE (resnet10t, synthetic-pool)**, seeds 0,1,2: `method.name=tce`" in readme
    assert len(pd.read_csv(out / "runs.csv")) == 12
    assert "percentile bootstrap (500 replicates" in readme and "Claims rest on the seed-level interval" in readme
    assert "random init [control]" in readme.split("## Table 1")[1].split("\n\n")[1]  # control rows say so
    assert main(["report", str(table1_sweep), "--out", str(out), "--no-figures", "--n-boot", "200"]) == 0  # again
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "README.md").write_text("mine")
    assert main(["report", str(table1_sweep), "--out", str(notes), "--no-figures"]) == 2
    assert "already holds a README.md that vssl report did not write" in capsys.readouterr().err
    assert (notes / "README.md").read_text() == "mine"
    assert main(["report", str(table1_sweep), "--out", str(out), "--summary", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["report", str(table1_sweep), "--out", str(out), "--ablation-axes", "method.bogus_axis"]) == 2
    assert "--ablation-axes: no run has method.bogus_axis" in capsys.readouterr().err


def test_report_pairs_every_row_with_each_control_present(tmp_path):
    """A sweep with only the BatchNorm-statistics control: every row is tested against it by default
    (the default used to be random_init alone, so every row read 'not tested')."""
    specs = [
        FakeRun(method=m, seed=s, accuracy=a, backbone_kind=kind, overrides=over)
        for m, a in (("random_init_bn", 0.30), ("tce", 0.42))
        for kind, over in (("2d", {}), ("3d", {"backbone.inflate": True}))
        for s in (0, 1, 2)
    ]
    sweep = write_fake_sweep(tmp_path / "sweep", specs)
    out = tmp_path / "report"
    assert main(["report", str(sweep), "--out", str(out), "--no-figures", "--n-boot", "200"]) == 0
    readme = (out / "README.md").read_text()
    assert (
        "## Paired difference vs random init + BN stats" in readme
        and "## Paired difference vs random init\n" not in readme
    )
    section = readme.split("## Paired difference vs random init + BN stats")[1].split("\n## ")[0]
    lines = [line for line in section.splitlines() if line.startswith("| TCE")]
    assert len(lines) == 2 * 2  # 2D and 3D TCE rows x linear, kNN
    assert not any("not tested" in line for line in lines)
    assert any(line.startswith("| TCE (resnet10t (inflated)") for line in lines)  # 3D row vs the 3D control


def test_report_summary_goes_under_the_title_and_a_missing_file_is_one_line(table1_sweep, tmp_path, capsys):
    summary = tmp_path / "summary.md"
    summary.write_text("> **Goal not reached.** What ran and why.\n")
    out = tmp_path / "report"
    assert (
        main(
            [
                "report",
                str(table1_sweep),
                "--out",
                str(out),
                "--no-figures",
                "--n-boot",
                "200",
                "--summary",
                str(summary),
            ]
        )
        == 0
    )
    lines = (out / "README.md").read_text().splitlines()
    assert lines[0].startswith("# ") and lines[2] == "> **Goal not reached.** What ran and why."
    assert main(["report", str(table1_sweep), "--out", str(out), "--summary", str(tmp_path / "nope.md")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("--summary file not found: " + str(tmp_path / "nope.md")) and "Traceback" not in "".join(
        err
    )


def test_report_with_two_baselines_has_a_paired_section_for_each(table1_sweep, tmp_path):
    out = tmp_path / "report"
    assert (
        main(
            [
                "report",
                str(table1_sweep),
                "--out",
                str(out),
                "--no-figures",
                "--n-boot",
                "200",
                "--baseline",
                "random_init,supervised",
            ]
        )
        == 0
    )
    readme = (out / "README.md").read_text()
    assert "## Paired difference vs random init" in readme and "## Paired difference vs supervised" in readme
    paired = (out / "paired.md").read_text()
    assert "## vs random init" in paired and "## vs supervised" in paired


def test_report_counts_test_reads_instead_of_claiming_one(ablation_sweep, table1_sweep, tmp_path):
    """The ablation's TCE runs evaluated the test split at step 50 and at the end: the report says so."""
    out = tmp_path / "ablation"
    assert main(["report", str(ablation_sweep), "--out", str(out), "--no-figures", "--n-boot", "200"]) == 0
    readme = (out / "README.md").read_text()
    assert "read once" not in readme and "no choice (epoch, hyper-parameter) was made" not in readme
    assert "the test split was read more than once per run" in readme
    assert (
        "- linear/synthetic/split1: 1 read per run (end) in 2 runs; 2 reads per run (step 50, end) in 8 runs" in readme
    )
    out = tmp_path / "table1"
    assert main(["report", str(table1_sweep), "--out", str(out), "--no-figures", "--n-boot", "200"]) == 0
    readme = (out / "README.md").read_text()
    assert "every run read the test split once per column, at the end of pre-training" in readme
    assert [
        "TCE (resnet10t, synthetic-pool)",
        "100 steps x batch 32",
        "budget not selected on held-out data",
        "linear 1, knn 1",
    ] in _md_rows(readme)
    assert ["random init [control] (resnet10t)", "none (no pre-training step)", "—", "linear 1, knn 1"] in _md_rows(
        readme
    )


def _md_rows(text: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines() if line.startswith("|")
    ]


def test_report_prints_each_rows_budget_selection(tmp_path):
    note = "steps from 60/100/240 by held-out top-1 on a third of TRAIN"
    specs = [FakeRun(method="random_init", seed=s, accuracy=0.25) for s in (0, 1)]
    specs += [FakeRun(seed=s, accuracy=0.4, budget_selection=note) for s in (0, 1)]
    out = tmp_path / "report"
    assert (
        main(
            [
                "report",
                str(write_fake_sweep(tmp_path / "s", specs)),
                "--out",
                str(out),
                "--no-figures",
                "--n-boot",
                "200",
            ]
        )
        == 0
    )
    readme = (out / "README.md").read_text()
    assert ["TCE (resnet10t, synthetic-pool)", "100 steps x batch 32", note, "linear 1, knn 1"] in _md_rows(readme)


def test_report_lists_the_method_settings_that_differ_from_the_defaults(tmp_path):
    """The protocol part of a report prints, per row, every method field off its default (TCE's calibrated CPU
    recipe against the specification's defaults, say)."""
    sweep = tmp_path / "s"
    for seed in (0, 1):
        write_fake_run(sweep / "cells" / f"t{seed}", FakeRun(method="tce", seed=seed,
                       overrides={"method.head": "mlp", "method.temperature": 0.1},
                       defaults={"method.rotation_weight": 1.0, "method.mining_schedule": "exponential"}))  # fmt: skip
        write_fake_run(sweep / "cells" / f"r{seed}", FakeRun(method="random_init", seed=seed))
        # a tuple default comes back from runs.csv as a JSON list: the same setting, not a deviation
        write_fake_run(sweep / "cells" / f"m{seed}", FakeRun(method="motion_stats", seed=seed, backbone_kind="3d",
                       defaults={"method.patterns": ["blocks", "rings", "triangles"]}))  # fmt: skip
    assert main(["report", str(sweep), "--out", str(tmp_path / "rep"), "--n-boot", "200"]) == 0
    text = (tmp_path / "rep" / "README.md").read_text()
    section = text.split("## Method settings that differ from each method's defaults", 1)[1].split("##", 1)[0]
    assert "head=mlp (default linear)" in section and "temperature=0.1 (default 0.07)" in section
    assert "random init" not in section.lower()  # a row on its defaults is not listed
    assert "patterns=" not in section
    assert "rotation_weight=" not in section and "mining_schedule=" not in section  # recorded, and the defaults


def test_report_header_names_the_runs_commit_the_report_code_and_every_file_by_hand(tmp_path):
    """The runs' code commit and the report's code commit are told apart, and hand-written files beside the
    report (a summary, a calibration log) are listed with the generated ones."""
    sweep = tmp_path / "s"
    for seed in (0, 1):
        write_fake_run(sweep / "cells" / f"t{seed}", FakeRun(method="tce", seed=seed))
    out = tmp_path / "rep"
    out.mkdir()
    (out / "calibration.md").write_text("# how the budgets were chosen\n")
    (tmp_path / "summary.md").write_text("What this shows.\n")
    args = ["report", str(sweep), "--out", str(out), "--n-boot", "200", "--no-figures", "--summary"]
    assert main([*args, str(tmp_path / "summary.md")]) == 0
    header = next(ln for ln in (out / "README.md").read_text().splitlines() if ln.startswith("Generated by"))
    assert "the runs' code at commit `000000000000`" in header and "by report code at commit" in header
    assert "`summary.md`" in header and "Also here, by hand: `calibration.md`." in header


def test_report_never_replaces_files_it_did_not_write(table1_sweep, tmp_path, capsys):
    """A folder holding a hand-made table.md or runs.csv (and no report README) is refused in one line, with its
    files unchanged; hand-written notes beside a report (calibration.md) are fine."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "table.md").write_text("my table\n")
    (notes / "runs.csv").write_text("a,b\n")
    (notes / "paired.md").write_text("mine\n")
    assert main(["report", str(table1_sweep), "--out", str(notes), "--no-figures", "--n-boot", "200"]) == 2
    err = capsys.readouterr().err.strip()
    assert "holds paired.md, runs.csv, table.md, which vssl report did not write" in err and "\n" not in err
    assert {p.name: p.read_text() for p in notes.iterdir()} == {
        "table.md": "my table\n",
        "runs.csv": "a,b\n",
        "paired.md": "mine\n",
    }
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "calibration.md").write_text("how budgets were chosen\n")
    assert main(["report", str(table1_sweep), "--out", str(fresh), "--no-figures", "--n-boot", "200"]) == 0
    assert (fresh / "calibration.md").read_text() == "how budgets were chosen\n"


def test_an_interrupted_report_leaves_the_earlier_one_as_it_was(table1_sweep, tmp_path, monkeypatch):
    """Every file is written into a staging folder and moved into place at the end: Ctrl-C while the figures are
    drawn leaves the earlier report's tables, figures and README intact (no half-written PNG, no README
    describing other tables), and the next run cleans the staging folder up."""
    from benchmark.results import plots

    out = tmp_path / "rep"
    args = ["report", str(table1_sweep), "--out", str(out), "--n-boot", "200"]
    assert main(args) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert any(p.suffix == ".png" for p in before)

    def interrupted(table, out_dir, axes):
        (out_dir / "table1.png").parent.mkdir(parents=True, exist_ok=True)
        (out_dir / "table1.png").write_bytes(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "all_figures", interrupted)
    assert main([*args, "--baseline", ""]) == 130  # would also have removed paired.md
    after = {
        p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and ".vssl-report-new" not in str(p)
    }
    assert after == before
    monkeypatch.undo()
    assert main(args) == 0
    assert not (out / ".vssl-report-new").exists()


def test_regenerating_a_report_keeps_its_summary(table1_sweep, tmp_path, capsys):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "summary.md").write_text("**What these numbers show.** Nothing yet.\n")
    args = ["report", str(table1_sweep), "--out", str(out), "--no-figures", "--n-boot", "200"]
    assert main(args) == 0
    assert "note: the findings come from" in capsys.readouterr().err
    assert "**What these numbers show.** Nothing yet." in (out / "README.md").read_text()
    assert main([*args, "--summary", ""]) == 0
    assert "What these numbers show" not in (out / "README.md").read_text()


def test_a_re_report_removes_figures_it_no_longer_draws_and_keeps_other_files(ablation_sweep, table1_sweep, tmp_path):
    """An ablation's report, then another sweep's into the same folder: hn_ablation.png/.pdf (not drawn for it)
    go, so the folder shows only this report's figures; a figure the user put there stays."""
    out = tmp_path / "rep"
    axes = ["--ablation-axes", "method.hn_schedule,method.hn_rate"]  # the fixture's field names
    assert main(["report", str(ablation_sweep), "--out", str(out), "--n-boot", "200", *axes]) == 0
    assert (out / "figures" / "hn_ablation.png").exists()
    (out / "figures" / "my_sketch.png").write_bytes(b"mine")
    assert main(["report", str(table1_sweep), "--out", str(out), "--n-boot", "200"]) == 0
    names = {p.name for p in (out / "figures").iterdir()}
    assert "hn_ablation.png" not in names and "hn_ablation.pdf" not in names and "table1.png" in names
    assert (out / "figures" / "my_sketch.png").read_bytes() == b"mine"


def test_a_report_without_paired_rows_does_not_list_paired_md(table1_sweep, tmp_path):
    """With no control to pair with (--baseline ''), paired.md is not written, so the README does not name it."""
    out = tmp_path / "rep"
    assert main(["report", str(table1_sweep), "--out", str(out), "--n-boot", "200", "--baseline", ""]) == 0
    readme = (out / "README.md").read_text()
    assert not (out / "paired.md").exists() and "`paired.md`" not in readme
    assert "`table.md`, `table.txt`, `table.tex` (booktabs), `table.csv` (numbers), `runs.csv`" in readme


def test_cells_that_never_started_are_said_not_left_out_silently(table1_sweep, tmp_path, capsys):
    """A cell cancelled while queued (or failed before it began) has no run folder: its row's n was smaller and the
    report said "0 skipped". The table says so on stderr and the report in its header. Cells of sweep.json that
    were never submitted (a row the sweep file has since dropped) are not counted: they never run again."""
    import json

    manifest = json.loads((table1_sweep / "sweep.json").read_text())
    manifest["cells"]["0123456789"] = {"label": "method=tce seed=9", "overrides": {}, "required": ["pretrain"]}
    (table1_sweep / "sweep.json").write_text(json.dumps(manifest))  # a cell the sweep file has since dropped
    assert main(["table", str(table1_sweep), "--format", "csv"]) == 0 and "note:" not in capsys.readouterr().err
    queued = {c: {"job_id": f"7_{i}"} for i, c in enumerate([*manifest["cells"], "abcdefabcd"])}  # two never began
    (table1_sweep / "jobs.json").write_text(json.dumps({"cells": queued, "submissions": []}))
    assert main(["table", str(table1_sweep), "--format", "csv"]) == 0
    err = capsys.readouterr().err
    assert f"note: 2 cells submitted to SLURM have no run folder (queued, cancelled or failed before starting, or " \
        f"moved away: `vssl status {table1_sweep}` says which), so no row counts them" in err  # fmt: skip
    assert main(["report", str(table1_sweep), "--out", str(tmp_path / "r"), "--no-figures"]) == 0
    assert "**Missing:** 2 cells submitted to SLURM have no run folder" in (tmp_path / "r" / "README.md").read_text()
    (table1_sweep / "jobs.json").write_text(json.dumps({"cells": {"abcdefabcd": {"job_id": "7_9"}}}))
    assert main(["table", str(table1_sweep), "--format", "csv"]) == 0
    assert "note: 1 cell submitted to SLURM has no run folder" in capsys.readouterr().err  # "so no row counts it"
    for broken in (b"[1, 2]", b'{"cells": [1]}', b"\xff\xfe{"):  # a job record that is not one: the table still reads
        (table1_sweep / "jobs.json").write_bytes(broken)
        assert main(["table", str(table1_sweep), "--format", "csv"]) == 0 and "note:" not in capsys.readouterr().err
