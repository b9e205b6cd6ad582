"""Does every objective learn its pretext task? (issue 12 part 4) -- a registry-wide learning test.

Every registered method whose ``pretraining is Pretraining.WEIGHTS`` (in-tree and installed plugins; the
random-init and BN-statistics controls are exempt) pre-trains through the real ``benchmark.train.pretrain``
on a small synthetic set generated once per session, and the run's own part-1 verdict must say it learned:
``metrics["pretrain"]["pretext"]["learned"] is True`` (held-out accuracy >= chance + m and >= step 0 + m,
m = 3 binomial SE; R^2 >= 0.1 for a regression pretext). Two negative cases must get ``learned is False``:
a loss detached from every trainable parameter, and labels drawn at random for every sample.

A method with no entry in BUDGETS runs with its class's ``learning_test_budget`` (how a plugin states its own),
else DEFAULT_BUDGET; if that does not learn, the failure asks for a budget. A method that cannot learn its pretext at any affordable budget is an xfail(strict=True) whose reason
states the measured facts (the lead decides), never a weakened check.

Budgets (fp32, 1 torch thread, test_resnet 0.37 M params; 3D rows inflate it with time kernel 1, see INFLATE).
Held-out figures on 256 samples (the harness default; 128 until 2026-12-04), seed 0 unless named; "needed" is
max(chance, step 0) + 3 SE. Supervised, Arrow of Time, 3D RotNet, VCOP, Skip-Clip, DPC, Shuffle and Learn and OPN
train with MILD_AUG (crops of scale 0.8-1 and flips, no colour jitter or grey), Cubic Puzzles with the same through
its own fields; TCE, CMC and VideoGAN keep the augmentation their rows name. CPU seconds: time.process_time of the
whole pretrain call incl. both held-out checks, in one `pytest tests/methods/test_learning.py -n 2 --dist loadgroup`
run (2026-12-04, thirteenth session, AMD EPYC 2-core VM with avx2 avx512f avx512_bf16, no AMX; torch capability
AVX512). "AVX2" figures: the same run with kernels capped at AVX2 (`ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2`), not an AVX2-only CPU. Earlier figures, incl. the avx2-only CPU's: results/perf/learning.md.

| method | budget (steps x batch, px) | held-out pretext: step 0 -> end (needed; chance); other seeds; AVX2 | CPU s |
|---|---|---|---|
| supervised | 400 x 16 clips of 4 frames, 32 px | 0.266 -> 0.906 (0.498; the held-out majority class 0.406); seeds 1-5: 0.801, 0.887, 0.703, 0.938, 0.754; AVX2 0.898 | 16.3 |
| opn | 300 x 32 tuples of 4, no channel splitting, head dropout 0, 16 px | 12-way order 0.098 -> 0.219 (0.150; 0.083); seeds 1, 2: 0.238, 0.199; AVX2 0.230 | 15.0 |
| shuffle_learn | 250 x 64 tuples of 3, balanced labels, MLP head, window 8, one random window, 16 px | in order? 0.523 -> 0.695 (0.617; 0.5); seeds 1, 2: 0.680, 0.660 (needs 0.594, 0.594); AVX2 0.672 | 14.8 |
| vcop | 200 x 8, 3 clips of 4 frames 2 apart, head dropout 0, 32 px | 6-way order 0.145 -> 0.426 (0.236; 0.167); seeds 1, 2: 0.488, 0.492; AVX2 0.449 | 12.2 |
| arrow_of_time | 100 x 16 clips of 8 (x 2 directions), frame differences (the default input), 32 px | 0.500 -> 0.682 (0.594; 0.5); seeds 1, 2: 0.686, 0.686; AVX2 0.691 | 11.2 |
| dpc | 40 x 8, 6 x 5 blocks, 32 px | 0.062 -> 0.457 (0.108; 0.0625); seeds 1, 2: 0.500, 0.412; AVX2 0.443 | 7.5 |
| cubic_puzzles | 150 x 8, spatial puzzle only, head dropout 0, pieces of 3 frames, 32 px | 24-way order 0.070 -> 0.895 (0.108; 0.042); seeds 1, 2: 0.922, 0.887; AVX2 0.863 | 6.4 |
| videogan | 30 x 8, clip 4, generator width 64, time kernel 3 (its own real-clip augmentation) | D's real/fake accuracy 0.465 -> 0.926 (0.594; 0.5); seeds 1, 2: 0.988, 0.941; AVX2 0.965 | 5.8 |
| cmc | 75 x 16, view2 frame, live positive, batch negatives, K 1, tau 0.1, 32 px (its own default augmentation) | cross-view retrieval 0.062 -> 0.266 (0.108; 0.0625); seeds 1, 2: 0.271, 0.250; AVX2 0.273; the flow view did not learn | 5.2 |
| tce | 75 x 16, 16 px, the calibration's milder colour augmentation (crops 0.6-1, jitter 0.4, hue 0.1, p 0.8, grey 0.2) | retrieval 0.199 -> 0.324 (0.244; 0.0625); seeds 1, 2: 0.312, 0.309; AVX2 0.336 | 4.1 |
| rotnet3d | 60 x 4 clips of 4 (x 4 rotations), 32 px | 0.257 -> 0.806 (0.338; 0.25); seeds 1, 2: 0.848, 0.904; AVX2 0.804 | 4.1 |
| skip_clip | 40 x 8, 4 clips of 3, 32 px | pair order 0.535 -> 0.844 (0.629; 0.5); seeds 1, 2: 0.812, 0.846; AVX2 0.829 | 3.9 |
| learn_detached_tce (negative) | as tce | 0.199 -> 0.211: not learned | 3.6 |
| learn_shuffled_rotnet3d (negative) | as rotnet3d | 0.257 -> 0.249: not learned | 4.4 |
| 1 strict xfail (CANNOT_LEARN: motion_stats) | 4 steps, 32-sample check | its reason cites the budgets that did not learn | ~0.6 |

The whole file on its two pytest-xdist workers (each learner its own group, the slowest collected first), timed
by `/usr/bin/time pytest tests/methods/test_learning.py -n 2 --dist loadgroup`, collection included (the issue's
target is 120 s), on the avx512 CPU above: 65 s (122 s user) with these budgets; 71 s (133 s user) with kernels
capped at AVX2. Before MILD_AUG reached supervised, VCOP, Arrow of Time, DPC, Cubic, 3D RotNet and Skip-Clip: 86-104 s
(158-190 s user) there. On the avx2-only CPU of 2026-12-03 it took 127 s (236 s user) with the older budgets (not
measured since: no avx2-only CPU was available). It is ``slow`` (``make test-fast`` skips it) but part of ``make
test`` and CI.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from benchmark.config import load_config
from benchmark.data.synthetic import SynthConfig, generate
from benchmark.losses import cross_entropy_accuracy
from benchmark.method import Pretraining, StepOutput
from benchmark.registry import METHODS
from benchmark.rundir import RunDir
from benchmark.train import pretrain
from methods.rotnet3d import NUM_ROTATIONS, rotate_clips

# 4 classes (Solid Circle/Square/Triangle/Star: bouncing, spinning, rocking, whirling), 160 pool videos of 16
# frames at 32 px: 128 pre-train, 32 held out for the pretext check (data.pretext_heldout = a fifth)
LEARN_SYNTH = SynthConfig(classes=4, videos_per_class=8, groups=4, test_groups=2, size=32, frames=16, pool_videos=160)
COMMON = [
    "data.dataset=synthetic-pool",  # supervised reads the pool's class folders as labels
    "data.num_workers=0",
    "backbone.name=test_resnet",  # timm's 0.37 M-parameter ResNet
    "optim.warmup_steps=0",
    "run.precision=fp32",
    "run.threads=1",
    "run.seed=0",
    "run.log_every=1000",
    "run.checkpoint_every=100000",  # one checkpoint, at the end
    "run.pretext_samples=256",  # the harness default and the minimum: 8 per held-out video
    "run.stages=[pretrain]",
]
DEFAULT_BUDGET = ["data.resolution=32", "optim.batch_size=8", "optim.steps=60", "optim.lr=0.003"]
# test_resnet as a 3D network for methods that need one, with time kernel 1 (frame-wise convolutions, time pooled
# at the end): this file tests each 3D objective's labels, head and loss, not what a 3-frame kernel adds, and a
# 3-frame kernel made the 3D learners ~3x slower on an AVX2-only CPU (results/perf/learning.md). A method whose
# pretext needs motion inside a clip sets backbone.inflate_time_kernel=3 in its budget (it comes after INFLATE)
INFLATE = ["backbone.inflate=true", "backbone.inflate_time_kernel=1"]

# Mild crops (scale 0.8-1) and flips, no colour jitter or grey, for the methods with AugmentFields (Cubic Puzzles
# says the same through its own fields; VideoGAN, TCE and CMC keep their own). The harness default (crops
# 0.5-1, colour jitter 0.5 / hue 0.25 with p 0.8, grey p 0.5) was most of the loaders' cost and slowed learning on
# this 32-px set: with it supervised seed 1 never learned and VCOP needed 400 steps (results/perf/learning.md)
MILD_AUG = ["method.crop_scale_min=0.8", "method.jitter=0", "method.hue=0", "method.gray_p=0"]

# method name -> its budget (the smallest measured to pass, with a safety factor; see the table above). Every
# method setting here is one of its documented options; none changes what the pretext asks.
BUDGETS: dict[str, list[str]] = {
    # 16 px, in-batch InfoNCE (negatives 1 + the batch), no mining, tau 0.1, the calibration's milder colour
    # augmentation: retrieval 0.22 -> 0.38 at 75 steps (needs 0.28); 150 steps: 0.44
    "tce": ["data.resolution=16", "optim.batch_size=16", "optim.steps=75", "optim.lr=0.003",
            "method.negatives=1", "method.batch_negatives=true", "method.mining_schedule=none",
            "method.temperature=0.1", "method.crop_scale_min=0.6", "method.jitter=0.4", "method.hue=0.1",
            "method.jitter_p=0.8", "method.gray_p=0.2"],
    # inflated test_resnet (16 px is too small for it), 4-frame clips in all 4 rotations, mild augmentation: 60 x 4
    # 0.26 -> 0.806 / 0.848 / 0.904 in seeds 0/1/2 (needs ~0.34), 4.5 CPU s; kernels capped at AVX2 0.804 / 0.824.
    # With the default augmentation, time kernel 1 (avx2-only CPU): 0.69 / 0.65 / 0.70 at 100 steps, 12 CPU s
    # (kernel 3: 0.64, 20 s; on avx512 kernel 3 at 60 steps: 0.25, the plateau before the escape the calibration
    # log describes)
    "rotnet3d": ["data.resolution=32", "optim.batch_size=4", "optim.steps=60", "optim.lr=0.003",
                 "method.clip_len=4", *MILD_AUG],
    # default 6 blocks x 5 frames, M = 16 candidates, mild augmentation: 40 x 8 0.062 -> 0.457 / 0.500 / 0.412 in
    # seeds 0/1/2 (needs ~0.108), 8.4 CPU s; kernels capped at AVX2 0.443 / 0.484; 60 x 8 0.439 / 0.486 / 0.486.
    # With the default augmentation, time kernel 1 (avx2-only CPU): 60 steps 0.238 / 0.188 / 0.184, 19 CPU s; 40
    # steps 0.207 / 0.145 / 0.145. Kernel 3 (until 2026-12-03, seed 0): 30 steps 0.160 (21 CPU s there)
    "dpc": ["data.resolution=32", "optim.batch_size=8", "optim.steps=40", "optim.lr=0.003", *MILD_AUG],
    # 4 frames per sample (a decode serves 4 frames: one frame per sample cost ~8 ms of decoding each). Chance is the
    # held-out majority class, 13 of the 32 videos (0.406), so it needs 0.498 on 256 samples. Mild augmentation, 400
    # x 16, seeds 0-5: 0.906 / 0.801 / 0.887 / 0.703 / 0.938 / 0.754, 16 CPU s; kernels capped at AVX2, seeds 0/1:
    # 0.898 / 0.828. 300 x 16: 0.898 / 0.703 / 0.816 / 0.609 / 0.871 / 0.559 (12.5 CPU s); 200 x 16: seeds 1 and 3
    # missed. With the default augmentation (until 2026-12-04) 400 x 16 took ~24 CPU s and seed 1 missed at every
    # budget tried (0.199-0.387; its untrained network already scores 0.375 and it trained slowly)
    "supervised": ["data.resolution=32", "optim.batch_size=16", "optim.steps=400", "optim.lr=0.003",
                   "method.clip_len=4", *MILD_AUG],
    # 4 frames without channel splitting (the mini table's OPN), head dropout 0, 16 px, mild crops (scale 0.8-1) and
    # flips without colour jitter or grey (the shared default's colour jitter was most of the loader's cost). 300 x
    # 32, seeds 0-3: 0.098 / 0.074 / 0.094 / 0.094 -> 0.219 / 0.238 / 0.199 / 0.258 (needs 0.150 / 0.135 / 0.146 /
    # 0.146), 15-16 CPU s; kernels capped at AVX2, seeds 0/1: 0.230 / 0.223; 250 x 32: 0.195 / 0.273 / 0.230; 400 x
    # 32: 0.273 / 0.336 / 0.223 (2026-12-04, twelfth session). With the default augmentation it needed 400 x 32:
    # 0.199 / 0.227 / 0.191 (needs 0.142 / 0.135 / 0.154), 27-33 CPU s; 300 x 32 missed in two seeds. With 128
    # samples the 3-SE margin was 0.073 and some seed always landed within 0.01 of it (2026-12-03)
    "opn": ["data.resolution=16", "optim.batch_size=32", "optim.steps=300", "optim.lr=0.003",
            "method.channel_split=false", "method.dropout=0", *MILD_AUG],
    # balanced labels (a 0.5 chance) and the MLP head as in the CPU sweeps, 16 px, windows of 8 frames (windows 5 and
    # 16 did worse), one random window per tuple (motion_candidates 1), mild crops (scale 0.8-1) and flips without
    # colour jitter or grey (the harness's strong default colour jitter cost ~2 s per 100 steps in the loader and
    # slowed learning). 250 x 64 learned in seeds 0-6: 0.695 / 0.680 / 0.660 / 0.664 / 0.684 / 0.680 / 0.695 (needs
    # 0.594-0.617), 15-17 CPU s; kernels capped at AVX2, seeds 0/1: 0.672 / 0.664; 200 x 64: seed 3 0.602, missed.
    # With the default augmentation it needed 400 x 64 (seeds 0-6: 0.617-0.676, seed 1's margin 0.023; 35-51 CPU s)
    # and 350 x 64 missed in seed 1; 300 x 64 at window 16: 1 of 3 seeds. At 32 px, batch 16 or 32, it stayed at
    # ~0.55 up to 600 steps (results/perf/learning.md) (2026-12-04, twelfth session)
    "shuffle_learn": ["data.resolution=16", "optim.batch_size=64", "optim.steps=250", "optim.lr=0.003",
                      "method.positive_fraction=0.5", "method.head=mlp", "method.window=8",
                      "method.motion_candidates=1", *MILD_AUG],
    # expected failure (CANNOT_LEARN): 4 steps and a 32-sample check (PATH_ONLY), enough to run its whole path in
    # CI (its reason cites 40-250x larger budgets that did not learn); a fix that makes it learn must come with a
    # budget here
    "motion_stats": ["data.resolution=32", "optim.batch_size=8", "optim.steps=4", "optim.lr=0.003",
                     "method.clip_len=4", "method.normalise_labels=true"],
    # the ventral pair (view2: frame, the paper's CMC(V) and the reading of the published row) with the CPU
    # recipe: 0.066 -> 0.258 at 75 x 16 (needs 0.130; 13 CPU s). The dorsal pair (view2: flow, the default) did
    # not clear step 0 + 3 SE at any budget tried here: 40 x 16 32 px 0.07 -> 0.11; 80 x 16 0.06 -> 0.08;
    # positive=live + batch negatives 40 x 16 16 px 0.06 -> 0.08, 80 x 16 32 px 0.06 -> 0.07
    "cmc": ["data.resolution=32", "optim.batch_size=16", "optim.steps=75", "optim.lr=0.003", "method.view2=frame",
            "method.positive=live", "method.batch_negatives=true", "method.negatives=1", "method.temperature=0.1"],
    # 3 clips of 4 frames 2 apart (16 frames, the set's length), head dropout 0, mild augmentation: 200 x 8 0.15 ->
    # 0.426 / 0.488 / 0.492 in seeds 0/1/2 (needs ~0.24), 13 CPU s; kernels capped at AVX2 0.449 / 0.434; 150 x 8
    # 0.383 / 0.410 / 0.402; 400 x 8 0.508 / 0.535 / 0.516. With the default augmentation it needed 400 x 8 (time
    # kernel 1, avx2-only CPU): 0.352 / 0.430 / 0.453, 44-56 CPU s; kernel 3 (until 2026-12-03) 500 x 8, narrowly:
    # 0.367 (needs 0.318) on avx512, 0.336 (needs 0.318) on the avx2-only CPU at 123 CPU s
    "vcop": ["data.resolution=32", "optim.batch_size=8", "optim.steps=200", "optim.lr=0.003",
             "method.clip_len=4", "method.gap=2", "method.dropout=0", *MILD_AUG],
    # issue 14's methods, budgets from the mini table's runs (table1-mini, 32 px, inflated test_resnet):
    # Skip-Clip 60 x 8 there: pair order 0.48 -> 0.76 (chance 0.5); here 4 clips of 3 fit the 16-frame videos;
    # mild augmentation, seeds 0/1/2: 0.844 / 0.812 / 0.846 (needs ~0.63-0.66), 4 CPU s; kernels capped at AVX2
    # 0.829 / 0.823. The default augmentation, time kernel 1 (avx2-only CPU): 0.716 / 0.693 / 0.714, 8 CPU s
    "skip_clip": ["data.resolution=32", "optim.batch_size=8", "optim.steps=40", "optim.lr=0.003",
                  "method.clip_len=3", "method.gap=1", *MILD_AUG],
    # VideoGAN 60 x 8 there: D's held-out real/fake accuracy 0.51 -> 0.99 (chance 0.5); Adam betas (0.5, 0.999).
    # Its discriminator judges motion, so it keeps the 3-frame kernel: 0.48 -> 0.96 (avx2-only CPU, 10 CPU s); with
    # kernel 1, seeds 0/1/2: 0.773 / 0.691 / 0.680, seed 1 only 0.003 above its margin
    "videogan": ["data.resolution=32", "optim.batch_size=8", "optim.steps=30", "optim.name=adam", "optim.lr=0.001",
                 "optim.betas=[0.5, 0.999]", "optim.weight_decay=0.0", "optim.schedule=constant",
                 "method.clip_len=4", "method.generator_width=64", "backbone.inflate_time_kernel=3"],
    # the default input, frame differences (the paper reads optical flow), mild augmentation: 100 x 16 (x 2
    # directions) 0.50 -> 0.682 / 0.686 / 0.686 in seeds 0/1/2 (needs ~0.594-0.608), 12 CPU s; kernels capped at
    # AVX2 0.691 / 0.686; 75 x 16 0.691 / 0.639 / 0.664. The default augmentation: 0.682 / 0.660 / 0.717, 14 CPU s.
    # RGB clips never left chance (CANNOT_LEARN's old reason: 2D concat 300 x 16 held-out 50.4, 1000 x 16 ~50, 3D
    # 44.1, also at 64 px)
    "arrow_of_time": ["data.resolution=32", "optim.batch_size=16", "optim.steps=100", "optim.lr=0.003", *MILD_AUG],
    # the spatial puzzle alone (spatial_p 1; the paper's default mixes it with the temporal one half the time,
    # and the temporal puzzle never left chance on the mini set: 600 x 8, 0.043), head dropout 0, mild crops
    # (scale 0.8-1) and no colour jitter (its own fields; its sampler draws no grey): 150 x 8 0.07 -> 0.895 / 0.922
    # / 0.887 in seeds 0/1/2 (needs ~0.11), 6.5 CPU s; kernels capped at AVX2 0.863 / 0.926; 100 x 8 0.465 / 0.648
    # / 0.473; 200 x 8 0.953 / 0.941 / 0.945. With its default augmentation the puzzle sat at chance, then escaped
    # at a step that varied with the seed: 400 x 8, dropout 0.5, 0.289/0.125/0.055 (seed 2 failed); dropout 0,
    # 0.555/0.281/0.234; time kernel 1 (avx2-only CPU) 300 steps 0.812 / 0.586 / 0.844, 23-30 CPU s
    "cubic_puzzles": ["data.resolution=32", "optim.batch_size=8", "optim.steps=150", "optim.lr=0.003",
                      "method.piece_len=3", "method.tgap=1", "method.spatial_p=1", "method.dropout=0",
                      "method.crop_scale_min=0.8", "method.jitter=0"],
}  # fmt: skip

CALIBRATION = "harness, generator v2, 32 px, test_resnet; the calibration log of issue 12 part 2"
# method name -> why it is an expected failure: measured facts (the lead decides what to do about each)
CANNOT_LEARN: dict[str, str] = {
    "motion_stats": "R^2 stays below 0.1 here: clip 4, normalised labels, 100 x 8: R^2 -4.45 -> -0.02 (lr 3e-3, "
    "28 CPU s), -0.01 (lr 1e-2); 40 x 8 raw labels: -3.58 -> -0.68 (this test's set, learn helper); mini set 600 x "
    "8: 0.003, at 64 px 0.013, without crops 0.000; its appearance labels alone reach 0.114 at 1000 x 8, its motion "
    f"labels alone -0.009 at 150 ({CALIBRATION}); on a scratch copy of generator v2 (12 classes, uncompressed) with "
    "a static camera, no nuisances and a flat background, a 3D CNN trained directly on the motion labels reached "
    "held-out R^2 0.125 at 500 steps, then 0.06 at 2000 as it over-fitted; on v2 itself it stayed at 0.000 "
    "(calibration.md, 2026-12-04)",
}


# appended to a CANNOT_LEARN method's budget: its test only runs the path (a 32-sample check costs ~0.2 CPU s)
PATH_ONLY = ["run.pretext_samples=32"]


def weight_methods() -> list[str]:
    return sorted(e.name for e in METHODS.entries() if e.obj.pretraining is Pretraining.WEIGHTS)


def own_worker(name: str) -> pytest.MarkDecorator:
    """Each learner is its own pytest-xdist group, so `make test`'s two workers share the file (tests/conftest.py
    otherwise keeps a file on one worker); each worker generates the learning set once."""
    return pytest.mark.xdist_group(f"learning-{name}")


# collected first, so that `make test`'s two workers finish the file together (a slow learner collected last leaves
# the other worker idle); by CPU seconds measured 2026-12-04 (the table above)
SLOWEST_FIRST = ("supervised", "opn", "shuffle_learn", "vcop", "arrow_of_time", "dpc", "cubic_puzzles", "videogan")


def params() -> list:
    names = weight_methods()
    out = []
    for name in [*(n for n in SLOWEST_FIRST if n in names), *(n for n in names if n not in SLOWEST_FIRST)]:
        marks = [pytest.mark.xfail(strict=True, reason=CANNOT_LEARN[name])] if name in CANNOT_LEARN else []
        out.append(pytest.param(name, marks=[*marks, own_worker(name)], id=name))
    return out


@pytest.fixture(autouse=True)
def small_pretext_check() -> None:
    """Overrides tests/conftest.py's fixture of this name, which measures a run left at the default 256 samples on
    16: this file tests the check itself, at the harness default."""


@pytest.fixture(scope="module")
def learn_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The learning set, generated once (about 2 CPU seconds); returns the $VSSL_DATA folder holding it."""
    home = tmp_path_factory.mktemp("vssl_learn")
    generate(home / "synthetic", LEARN_SYNTH, workers=1, progress=False)
    return home


@pytest.fixture
def data_home(learn_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VSSL_DATA", str(learn_data))
    monkeypatch.setenv("VSSL_CACHE", str(tmp_path / "cache"))
    return learn_data


def budget_of(name: str) -> list[str]:
    """BUDGETS' entry (in-tree methods), else the method's own ``learning_test_budget`` (a plugin states its budget
    in its class, not in this file), else DEFAULT_BUDGET."""
    return BUDGETS.get(name) or list(METHODS.get(name).learning_test_budget) or DEFAULT_BUDGET


def run_pretext(name: str, root: Path, budget: list[str] | None = None) -> tuple[dict, float]:
    """Pre-train ``name`` through the real path; the run's pretext entry and the CPU seconds it took."""
    if budget is None:
        budget = [*budget_of(name), *(PATH_ONLY if name in CANNOT_LEARN else [])]
    kind = METHODS.get(name).backbone_kind
    cfg = load_config({}, [*COMMON, *(INFLATE if kind == "3d" else []), f"method.name={name}", *budget])
    threads = torch.get_num_threads()
    start = time.process_time()
    try:
        entry = pretrain(RunDir(root / name), cfg, {}, progress_bar=False)
    finally:
        torch.set_num_threads(threads)
    return entry["pretext"], time.process_time() - start


def describe(pretext: dict, cpu: float) -> str:
    step0, final = pretext.get("step0", {}), pretext.get("final", {})
    return (f"{pretext.get('measure')}: step 0 {step0.get('value', float('nan')):.3f} -> end "
            f"{final.get('value', float('nan')):.3f}, chance {pretext.get('chance', {}).get('accuracy')}, "
            f"margin {pretext.get('margin')}, {final.get('samples')} held-out samples; {cpu:.1f} CPU s")  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", params())
def test_every_objective_learns_its_pretext(name, data_home, tmp_path):
    pretext, cpu = run_pretext(name, tmp_path)
    print(f"{name}: {describe(pretext, cpu)}")  # the figures behind the budget table (pytest -rP shows them)
    hint = (
        ""
        if budget_of(name) is not DEFAULT_BUDGET
        else f" (no budget for '{name}': it ran DEFAULT_BUDGET; set the method's learning_test_budget, or an in-tree "
        "method's BUDGETS entry)"
    )
    assert pretext.get("learned") is True, f"{name} did not learn its pretext: {describe(pretext, cpu)}{hint}"


# ---------------------------------------------------------------------------------------- negative cases
def detached(base: type) -> type:
    """``base`` whose loss reaches no trainable parameter: the same forward, ``loss.detach()`` handed back
    (with requires_grad so backward runs): every step leaves every weight where it was."""

    class Detached(base):
        def training_step(self, batch, progress):
            out = super().training_step(batch, progress)
            return StepOutput(out.loss.detach().requires_grad_(), out.scalars)

    return Detached


def shuffled_rotations(base: type) -> type:
    """3D RotNet trained with a rotation label drawn at random for every rotated clip (the clip itself is
    rotated as usual), so nothing is learnable; the held-out check (eval mode) scores the true rotations."""

    class Shuffled(base):
        def training_step(self, batch, progress):
            if not self.training:  # the pretext check: the real labels
                return super().training_step(batch, progress)
            clips, labels = rotate_clips(batch["clip"], self.cfg.rotations)
            random = torch.randint_like(labels, NUM_ROTATIONS)
            return StepOutput(*cross_entropy_accuracy(self.head(self.backbone(clips)), random))

    return Shuffled


# (test-only method name, wrapper, the registered method it wraps): the wrapped method learns on the same
# budget in test_every_objective_learns_its_pretext, so "did not learn" here is the wrapper's doing. TCE for the
# detached loss: its held-out retrieval is the one a BatchNorm-statistics drift alone could move (the forward
# still runs in train mode); RotNet's rotation labels for the shuffled ones (supervised costs ~4x more)
NEGATIVES = [
    ("learn_detached_tce", detached, "tce"),
    ("learn_shuffled_rotnet3d", shuffled_rotations, "rotnet3d"),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "wrap", "base"), [pytest.param(*n, marks=own_worker(n[0]), id=n[0]) for n in NEGATIVES]
)
def test_a_broken_objective_does_not_learn(name, wrap, base, data_home, tmp_path):
    cls = wrap(METHODS.get(base))
    METHODS.register(name)(cls)
    try:
        pretext, cpu = run_pretext(name, tmp_path, BUDGETS[base])
    finally:
        METHODS.unregister(name)
    print(f"{name}: {describe(pretext, cpu)}")
    assert pretext.get("learned") is False, f"{name} ({base}, broken): {describe(pretext, cpu)}"
