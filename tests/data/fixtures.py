"""Small fixture videos and datasets written with PyAV: every format, plus the broken and odd files.

Every frame of a fixture video is different (a moving block and a frame counter
in the colour), so a wrong frame never compares equal by accident.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

SIZE = (32, 24)  # width, height


def frames_rgb(n: int, size: tuple[int, int] = SIZE, seed: int = 0) -> np.ndarray:
    w, h = size
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, (h, w, 3), dtype=np.uint8)
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        f = base.copy()
        f[..., 0] = (f[..., 0].astype(int) + 7 * i) % 256
        x = (3 * i) % (w - 8)
        f[4:12, x : x + 8] = (255 - 9 * i % 256, 30, 9 * i % 256)
        out[i] = f
    return out


def write_video(
    path: Path,
    n: int = 24,
    codec: str = "mpeg4",
    fmt: str | None = None,
    gop: int = 4,
    bframes: int = 0,
    vfr: bool = False,
    size: tuple[int, int] = SIZE,
    seed: int = 0,
) -> Path:
    """A video of ``n`` distinct frames. ``vfr``: frame durations alternate 40 ms / 20 ms in runs of 5."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        ctx = s.codec_context
        ctx.gop_size, ctx.max_b_frames, ctx.thread_count = gop, bframes, 1
        if codec == "libx264":
            s.options = {"keyint": str(gop), "min-keyint": str(gop), "scenecut": "0", "bframes": str(bframes)}
        else:
            ctx.qscale = True
            ctx.global_quality = 2 * 118
        if vfr:
            s.codec_context.time_base = s.time_base = Fraction(1, 1000)
        t = 0
        for i, rgb in enumerate(frames_rgb(n, size, seed)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if vfr:
                frame.pts, frame.time_base = t, Fraction(1, 1000)
                t += 40 if (i // 5) % 2 == 0 else 20
            else:
                frame.pts = i
            c.mux(s.encode(frame))
        c.mux(s.encode())
    return path


def full_decode(path: Path) -> torch.Tensor:
    """Reference: every frame, decoded sequentially with plain PyAV (uint8 [T, 3, H, W])."""
    with av.open(str(path)) as container:
        frames = [torch.from_numpy(f.to_ndarray(format="rgb24")).permute(2, 0, 1) for f in container.decode(video=0)]
    return torch.stack(frames)


# ---------------------------------------------------------------------- odd and broken files
ODD_KINDS = ("h264_avi", "vfr_mp4", "vfr_mkv", "h264_mp4_sparse", "short")
BROKEN_KINDS = ("zero", "truncated", "text", "random")


def write_odd(path: Path, kind: str) -> Path:
    """Decodable but awkward: h264 in AVI (wrong seeks), variable frame rate, sparse keyframes, 3 frames."""
    if kind == "h264_avi":
        return write_video(path, 40, "libx264", "avi", gop=20, bframes=2, seed=1)
    if kind == "vfr_mp4":
        return write_video(path, 40, "libx264", "mp4", gop=12, bframes=2, vfr=True, seed=2)
    if kind == "vfr_mkv":
        return write_video(path, 40, "libx264", "matroska", gop=12, bframes=0, vfr=True, seed=3)
    if kind == "h264_mp4_sparse":
        return write_video(path, 60, "libx264", "mp4", gop=60, bframes=2, seed=4)
    if kind == "short":
        return write_video(path, 3, seed=5)
    raise ValueError(kind)


def write_broken(path: Path, kind: str, donor: Path | None = None) -> Path:
    """Not decodable: empty, cut in half (needs a ``donor`` video), text, random bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "zero":
        path.write_bytes(b"")
    elif kind == "truncated":
        data = Path(donor).read_bytes() if donor else write_video(path.with_name("donor.avi"), 40).read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif kind == "text":
        path.write_text("this is not a video\n" * 50)
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    else:
        raise ValueError(kind)
    return path


# ---------------------------------------------------------------------- datasets
UCF_CLASSES = ("ApplyEyeMakeup", "HandstandPushups", "YoYo")


def make_ucf(root: Path, groups: int = 3, frames: int = 12) -> Path:
    """A UCF101 copy with 3 classes x ``groups`` groups x 1 clip and real 3-split lists: group g is in the
    test list of split g (1-based) and the train lists of the others. HandstandPushups files and folder use
    UCF's 'HandStandPushups' spelling."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(UCF_CLASSES, 1)))
    for split in (1, 2, 3):
        train, test = [], []
        for label, cls in enumerate(UCF_CLASSES, 1):
            disk = "HandStandPushups" if cls == "HandstandPushups" else cls
            for g in range(1, groups + 1):
                rel = f"{cls}/v_{disk}_g{g:02d}_c01.avi"
                (test.append(rel) if g == split else train.append(f"{rel} {label}"))
        (lists / f"trainlist0{split}.txt").write_text("\n".join(train) + "\n")
        (lists / f"testlist0{split}.txt").write_text("\n".join(test) + "\n")
    for cls in UCF_CLASSES:
        disk = "HandStandPushups" if cls == "HandstandPushups" else cls
        for g in range(1, groups + 1):
            write_video(root / disk / f"v_{disk}_g{g:02d}_c01.avi", frames, seed=10 * UCF_CLASSES.index(cls) + g)
    return root


HMDB_CLASSES = ("brush_hair", "cartwheel")


def make_hmdb(root: Path, frames: int = 12) -> Path:
    """HMDB51 layout: 2 classes x 4 videos; tags per split written by hand below."""
    tags = {  # video -> (split1, split2, split3) tags
        "brush_hair": {
            "April_09_brush_hair_u_nm_np1_ba_goo_0.avi": (1, 2, 1),
            "Blonde_being_brushed_f_nm_np2_ri_med_1.avi": (2, 1, 1),
            "brushing_hair_2_brush_hair_h_nm_np1_le_goo_2.avi": (0, 1, 2),
            "red_head_brush_hair_u_cm_np1_ba_goo_0.avi": (1, 0, 2),
        },
        "cartwheel": {
            "(Rad)Schlag_die_Bank!_cartwheel_f_cm_np1_le_med_0.avi": (1, 1, 2),
            "Acrobacias_de_un_fenomeno_cartwheel_f_cm_np1_ba_bad_8.avi": (2, 2, 1),
            "Bodenturnen_2004_cartwheel_f_cm_np1_le_med_0.avi": (1, 2, 0),
            "Cartwheel_Joyce_cartwheel_f_cm_np1_ri_med_1.avi": (0, 1, 1),
        },
    }
    lists = root / "testTrainMulti_7030_splits"
    lists.mkdir(parents=True, exist_ok=True)
    for cls, videos in tags.items():
        for split in (1, 2, 3):
            (lists / f"{cls}_test_split{split}.txt").write_text(
                "".join(f"{v} {t[split - 1]} \n" for v, t in videos.items())
            )
        for k, v in enumerate(videos):
            write_video(root / cls / v, frames, seed=k)
    return root


def hmdb_expected(root: Path) -> dict:
    """(split, tag) -> set of video ids, parsed independently from the hand-written tags above."""
    out: dict = {}
    for f in (root / "testTrainMulti_7030_splits").glob("*_test_split*.txt"):
        cls, split = f.name.rsplit("_test_split", 1)
        for line in f.read_text().splitlines():
            video, tag = line.split()
            out.setdefault((int(split[0]), int(tag)), set()).add(f"{cls}/{video[:-4]}")
    return out


KINETICS_ROWS = [  # label, youtube_id, start, end, split, on disk as
    ("abseiling", "aaa-bbb_ccc", 10, 20, "train", "long"),
    ("abseiling", "dddeeefff01", 0, 10, "train", "short"),
    ("air drumming", "ggghhhiii02", 5, 15, "train", "long"),
    ("air drumming", "jjjkkklll03", 30, 40, "train", None),  # missing
    ("air drumming", "mmmnnnooo04", 1, 11, "train", None),  # missing
    ("abseiling", "pppqqqrrr05", 7, 17, "val", "long"),
    ("air drumming", "ssstttuuu06", 0, 10, "val", "short"),
    ("air drumming", "vvvwwwxxx07", 2, 12, "val", None),  # missing
]


def _quoted(label: str) -> str:
    return f'"{label}"' if " " in label else label


def make_kinetics(root: Path, is_cc: bool = True, underscore_folders: bool = True, frames: int = 12) -> Path:
    """Kinetics-400 layout: annotations/{train,validate}.csv; clips in <split>/<label>/ named either way;
    label folders spelt with underscores ('air_drumming') when ``underscore_folders``."""
    ann = root / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    header = "label,youtube_id,time_start,time_end,split" + (",is_cc" if is_cc else "")
    for part, csv_name in (("train", "train.csv"), ("val", "validate.csv")):
        rows = [header] + [
            f"{_quoted(lab)},{y},{s},{e},{sp}" + (",0" if is_cc else "")
            for lab, y, s, e, sp, _ in KINETICS_ROWS
            if sp == part
        ]
        (ann / csv_name).write_text("\n".join(rows) + "\n")
    for k, (lab, y, s, e, sp, style) in enumerate(KINETICS_ROWS):
        if style is None:
            continue
        folder = lab.replace(" ", "_") if underscore_folders else lab
        name = f"{y}_{s:06d}_{e:06d}.mp4" if style == "long" else f"{y}.mp4"
        write_video(root / sp / folder / name, frames, codec="libx264", fmt="mp4", gop=4, seed=k)
    return root
