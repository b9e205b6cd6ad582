"""The synthetic generator: UCF101 layout, split files, determinism, decodability, defaults."""

from __future__ import annotations

import colorsys
import hashlib
import json
import re
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

from benchmark.data import synthetic
from benchmark.data.synthetic import (
    PALETTE_HUES,
    SHADOW,
    TILT,
    SynthConfig,
    _plan,
    _trajectory,
    class_specs,
    generate,
    render_video,
)
from benchmark.errors import UserError

SMALL = dict(classes=3, videos_per_class=4, groups=4, test_groups=2, size=32, frames=16, pool_videos=4)


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "synth.json"
    }


def test_layout_matches_ucf101(tiny_synth: Path, tiny_synth_config: SynthConfig):
    cfg = tiny_synth_config
    lists = tiny_synth / "ucfTrainTestlist"
    class_lines = (lists / "classInd.txt").read_text().splitlines()
    classes = [line.split(" ")[1] for line in class_lines]
    assert [line.split(" ")[0] for line in class_lines] == [str(i) for i in range(1, cfg.classes + 1)]
    assert classes == sorted(classes) and len(set(classes)) == cfg.classes
    assert all(re.fullmatch(r"[A-Z][A-Za-z]+", c) for c in classes)

    train = (lists / "trainlist01.txt").read_text().splitlines()
    test = (lists / "testlist01.txt").read_text().splitlines()
    pattern = re.compile(r"(?P<c>[A-Za-z]+)/v_(?P=c)_g(?P<g>\d\d)_c(?P<k>\d\d)\.avi")
    listed = []
    for line in train:
        rel, label = line.split(" ")
        m = pattern.fullmatch(rel)
        assert m, line
        assert classes[int(label) - 1] == m["c"]
        assert int(m["g"]) > cfg.effective_groups[1]  # train groups come after the test groups
        listed.append(rel)
    for rel in test:
        m = pattern.fullmatch(rel)
        assert m and " " not in rel, rel
        assert 1 <= int(m["g"]) <= cfg.effective_groups[1]
        listed.append(rel)
    assert len(listed) == len(set(listed)) == cfg.classes * cfg.videos_per_class
    on_disk = sorted(str(p.relative_to(tiny_synth)) for p in tiny_synth.glob("*/*.avi"))
    assert on_disk == sorted(listed)
    assert len(test) == cfg.classes * 2 and len(train) == cfg.classes * 2

    pool = sorted(tiny_synth.glob("pool/*/*.avi"))
    assert len(pool) == cfg.pool_videos
    assert {p.parent.name for p in pool} <= set(classes)
    summary = json.loads((tiny_synth / "synth.json").read_text())
    assert summary["config"]["seed"] == cfg.seed and summary["classes"] == classes
    assert summary["counts"] == {
        "classes": 3,
        "train": 6,
        "test": 6,
        "pool": cfg.pool_videos,
        "videos": 12 + cfg.pool_videos,
    }


def test_every_file_decodes(tiny_synth: Path, tiny_synth_config: SynthConfig):
    cfg = tiny_synth_config
    files = sorted(tiny_synth.rglob("*.avi"))
    assert len(files) == cfg.classes * cfg.videos_per_class + cfg.pool_videos
    for path in files:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "mpeg4" and container.format.name == "avi"
            assert stream.frames == cfg.frames and float(stream.average_rate) == cfg.fps
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert len(frames) == cfg.frames
        assert frames[0].shape == (cfg.size, cfg.size, 3)
        assert frames[0].std() > 5  # not blank


def test_deterministic_and_seeded(tmp_path: Path):
    a = generate(tmp_path / "a", SynthConfig(**SMALL), workers=1, progress=False)
    generate(tmp_path / "b", SynthConfig(**SMALL), workers=2, progress=False)  # scheduling must not matter
    generate(tmp_path / "c", SynthConfig(**SMALL, seed=1), workers=1, progress=False)
    ha, hb, hc = (_hashes(tmp_path / x) for x in "abc")
    assert ha == hb
    videos = [k for k in ha if k.endswith(".avi")]
    assert len(videos) == a["videos"]
    assert all(ha[k] != hc[k] for k in videos)  # a different seed changes every video
    assert len({ha[k] for k in videos}) == len(videos)  # no two videos alike


def test_rerun_is_skipped_unless_forced(tmp_path: Path):
    cfg = SynthConfig(**{**SMALL, "pool_videos": 0})
    first = generate(tmp_path / "s", cfg, workers=1, progress=False)
    assert not first["skipped"] and first["bytes"] > 0 and first["pool"] == 0
    assert not (tmp_path / "s" / "pool").exists()
    again = generate(tmp_path / "s", cfg, workers=1, progress=False)
    assert again["skipped"] and again["test"] == first["test"]
    forced = generate(tmp_path / "s", cfg, workers=1, progress=False, force=True)
    assert not forced["skipped"]
    # an interrupted run (synth.json still marked incomplete) is redone, not refused or skipped
    stored = json.loads((tmp_path / "s" / "synth.json").read_text())
    (tmp_path / "s" / "synth.json").write_text(json.dumps({**stored, "complete": False}))
    (tmp_path / "s" / "ucfTrainTestlist" / "classInd.txt").unlink()
    assert not generate(tmp_path / "s", cfg, workers=1, progress=False)["skipped"]
    assert (tmp_path / "s" / "ucfTrainTestlist" / "classInd.txt").is_file()
    # a different config replaces the previous dataset (no stale classes left behind)
    generate(tmp_path / "s", SynthConfig(**{**SMALL, "classes": 2, "pool_videos": 0}), workers=1, progress=False)
    assert len([p for p in (tmp_path / "s").iterdir() if p.is_dir() and p.name != "ucfTrainTestlist"]) == 2


def test_refuses_foreign_directory(tmp_path: Path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not written by"):
        generate(tmp_path / "x", SynthConfig(**SMALL), workers=1, progress=False)


def test_defaults_design():
    cfg = SynthConfig()
    assert cfg.size == 32  # generator v2: 32 px by default
    specs, train, test, pool = _plan(cfg)
    assert len(test) >= 300 and len(train) >= 300 and len(pool) == 600
    assert {j.relpath.split("/")[1] for j in pool}.isdisjoint({j.relpath.split("/")[1] for j in train + test})
    # 12 classes = 6 shapes x 2 fills, each with its own motion
    assert len({(s.shape, s.fill) for s in specs}) == 12 and len({s.shape for s in specs}) == 6
    assert len({s.motion for s in specs}) == 12
    assert not any(s.shape == "Circle" and s.motion in ("Spinning", "Whirling", "Rocking") for s in specs)
    assert [s.name for s in class_specs(3)] == [s.name for s in specs[:3]]  # prefix-stable ordering
    # v2: no Hexagon among the 12 (a Circle at 32 px); Arrow instead; the extra classes still use every shape
    assert "Hexagon" not in {s.shape for s in specs} and "Arrow" in {s.shape for s in specs}
    extra = class_specs(len(specs) + 4)[len(specs) :]
    assert {s.shape for s in extra} == {"Hexagon", "Diamond"}
    assert TILT < 0.5  # objects stand upright (+-20 degrees), so "up" is defined


PERIODIC = ("Bouncing", "Sliding", "Orbiting", "Pulsing", "Zigzagging", "Looping", "Rocking", "Hopping")


@pytest.mark.parametrize("motion", [*PERIODIC, "Spinning", "Whirling"])
def test_motions_lose_energy(motion):
    """v2: a clip played backwards is implausible: the motion slows down over the video (v1's ratio was ~1.0)."""
    t = np.linspace(0.0, 1.0, 64)
    ratios = []
    for seed in range(50):
        dx, dy, rot, scale = _trajectory(motion, t, np.random.default_rng(seed), 32)
        signal = np.stack([dx, dy, rot * 32, scale * 32])
        signal -= np.stack([np.polyval(np.polyfit(t, s, 1), t) for s in signal])  # drift, sideways travel
        if motion in ("Spinning", "Whirling"):  # the rotation itself, not its deviation from a steady spin
            signal = np.stack([rot * 32])
            assert np.all(np.diff(rot) * (1 if motion == "Spinning" else -1) > 0)  # one direction throughout
        speed = np.abs(np.diff(signal, axis=1)).sum(axis=0)
        ratios.append(speed[:21].mean() / speed[-21:].mean())  # first third vs last third
    assert np.median(ratios) > 1.5, ratios


@pytest.mark.parametrize(
    "bad", [dict(classes=99), dict(size=33), dict(test_groups=20), dict(frames=1), dict(seed=-1), dict(fps=1000000)]
)
def test_bad_config(bad):
    with pytest.raises(UserError):
        SynthConfig(**bad).validate()


def test_few_videos_still_give_both_splits():
    cfg = SynthConfig(classes=2, videos_per_class=4)  # fewer videos than the 20 default groups
    _, train, test, _ = _plan(cfg)
    assert len(train) == 4 and len(test) == 4


def test_synth_help_lists_every_config_field_with_its_default():
    import dataclasses

    from benchmark.commands.synth import SYNTH_FIELDS

    listed = dict(item.rstrip("]").split(" [") for item in SYNTH_FIELDS.split(", "))
    assert listed == {f.name: str(f.default) for f in dataclasses.fields(SynthConfig)}


# ---------------------------------------------------------------------- what the renderer draws
PROBE = SynthConfig(classes=3, videos_per_class=16, groups=4, test_groups=2, size=16, frames=8, pool_videos=6)


def probe_render(monkeypatch, cfg: SynthConfig, job) -> tuple[np.ndarray, list[float], list[tuple]]:
    """Render one planned video, recording the object's hue per frame (what reaches colorsys.hsv_to_rgb last) and
    its (cx, cy, radius, angle) per frame (what reaches _object_alpha)."""
    hues, poses = [], []
    object_alpha = synthetic._object_alpha

    def hsv_to_rgb(h, s, v):
        hues.append(h)
        return colorsys.hsv_to_rgb(h, s, v)

    def spy(shape, fill, size, cx, cy, radius, angle):
        poses.append((cx, cy, radius, angle))
        return object_alpha(shape, fill, size, cx, cy, radius, angle)

    with monkeypatch.context() as m:
        m.setattr(synthetic, "colorsys", SimpleNamespace(hsv_to_rgb=hsv_to_rgb))
        m.setattr(synthetic, "_object_alpha", spy)
        frames = render_video(job.spec, cfg, np.random.default_rng(list(job.seed_key)))
    assert len(poses) == cfg.frames
    return frames, hues[-cfg.frames :], poses  # background textures may be drawn (and coloured) first


def palette_index(hue: float) -> int:
    """The palette entry a drawn hue came from (entries are >= 0.07 apart, the jitter is +-0.02)."""
    return int(np.argmin([min(abs(hue - p), 1 - abs(hue - p)) for p in PALETTE_HUES]))


def test_object_colour_is_not_the_class(monkeypatch):
    """Colour is a nuisance shared by all classes: a colour-per-class would be a shortcut inflating every probe."""
    _, train, test, _ = _plan(PROBE)
    used: dict[str, set[int]] = {}
    for job in train + test:
        _, hues, _ = probe_render(monkeypatch, PROBE, job)
        used.setdefault(job.spec.name, set()).add(palette_index(hues[0]))
    assert len(used) == 3 and all(len(h) >= 4 for h in used.values()), used  # 16 draws of 10 hues per class
    counts = Counter(h for hs in used.values() for h in hs)
    assert max(counts.values()) >= 2, used  # some hue in several classes


def test_objects_stand_upright(monkeypatch):
    """Tilt within +-TILT (3D RotNet's signal: the world has an up). Bouncing and spinning objects start at their
    initial tilt, so the first frame's angle is it."""
    _, train, test, _ = _plan(PROBE)
    angles = [
        probe_render(monkeypatch, PROBE, job)[2][0][3]
        for job in train + test
        if job.spec.motion in ("Bouncing", "Spinning")
    ]
    assert len(angles) == 32
    assert all(-TILT <= a <= TILT for a in angles), angles
    assert min(angles) < -TILT / 3 and max(angles) > TILT / 3  # drawn over the range, not fixed


def test_rendered_spins_slow_down_over_the_video(monkeypatch):
    """The arrow of time reaches the frames: a spinning object's per-frame rotation shrinks from first to last
    frame (played backwards it would speed up)."""
    _, train, test, _ = _plan(PROBE)
    spinning = [job for job in train + test if job.spec.motion == "Spinning"]
    assert len(spinning) == 16
    for job in spinning:
        angles = np.array([pose[3] for pose in probe_render(monkeypatch, PROBE, job)[2]])
        step = np.abs(np.diff(angles))
        assert np.all(np.diff(step) < 0), step


def test_pool_holds_every_class_in_balance():
    cfg = SynthConfig(**{**SMALL, "pool_videos": 7})
    specs, _, _, pool = _plan(cfg)
    counts = Counter(job.relpath.split("/")[1] for job in pool)
    assert counts == {specs[0].name: 3, specs[1].name: 2, specs[2].name: 2}
    assert all(job.relpath.split("/")[1] == job.spec.name for job in pool)
    assert len({job.relpath for job in pool}) == len({job.seed_key for job in pool}) == 7


def test_seed_changes_every_video_plan():
    """The generator seed reaches each video's own random stream (object, trajectory, colour, nuisances)."""
    plans = [_plan(SynthConfig(**SMALL, seed=seed)) for seed in (0, 1)]
    for jobs_a, jobs_b in zip(plans[0][1:], plans[1][1:], strict=True):
        assert [j.relpath for j in jobs_a] == [j.relpath for j in jobs_b] and jobs_a
        for a, b in zip(jobs_a, jobs_b, strict=True):
            assert np.random.default_rng(list(a.seed_key)).random() != np.random.default_rng(list(b.seed_key)).random()


def test_seed_changes_the_background_pool():
    """The generator seed also reaches the background textures: the same video stream (object, trajectory,
    nuisances) rendered under two generator seeds differs."""
    job = _plan(SynthConfig(**SMALL))[1][0]
    a, b = (
        render_video(job.spec, SynthConfig(**SMALL, seed=seed), np.random.default_rng(list(job.seed_key)))
        for seed in (0, 1)
    )
    assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() > 5


def test_more_test_groups_than_videos_still_leave_a_train_split():
    cfg = SynthConfig(classes=2, videos_per_class=4, groups=20, test_groups=19)
    cfg.validate()
    assert cfg.effective_groups == (4, 3)
    _, train, test, _ = _plan(cfg)
    assert len(train) == 2 and len(test) == 6


def test_leftover_clips_go_to_the_last_train_groups():
    """5 videos in 4 groups: the fifth is a second clip of the last group (a train group), not of a test group."""
    cfg = SynthConfig(videos_per_class=5, groups=4, test_groups=2)
    assert cfg.group_clips() == [(1, 1), (2, 1), (3, 1), (4, 1), (4, 2)]
    assert SynthConfig(videos_per_class=6, groups=4, test_groups=2).group_clips()[-3:] == [(3, 2), (4, 1), (4, 2)]
    _, train, test, _ = _plan(SynthConfig(classes=2, videos_per_class=5, groups=4, test_groups=2))
    assert len(test) == 4 and len(train) == 6


def test_light_comes_from_above(monkeypatch):
    """The drop shadow darkens the background below the object (another "up" cue): the darkening a shadow adds
    to a video is centred below the object's centre, about SHADOW[0] of the frame lower."""
    cfg = SynthConfig(**SMALL)
    rows = np.arange(cfg.size)[:, None]
    offsets = []
    for job in _plan(cfg)[1][:4]:
        shaded, _, poses = probe_render(monkeypatch, cfg, job)
        with monkeypatch.context() as m:
            m.setattr(synthetic, "SHADOW", (*SHADOW[:2], 0.0))  # same video, no shadow
            plain, _, _ = probe_render(monkeypatch, cfg, job)
        darkening = np.clip(plain.astype(float) - shaded, 0, None).sum(-1)  # [T, H, W]
        for frame, (_, cy, _, _) in zip(darkening, poses, strict=True):
            if frame.sum() > 0:
                offsets.append((frame * rows).sum() / frame.sum() - cy)
    assert len(offsets) > 40 and np.median(offsets) > SHADOW[0] * cfg.size / 2, offsets
