"""From an index and a sampler to batches, exactly reproducible and resumable by step.

Every sample is addressed by (step, slot): the video comes from a per-epoch
permutation seeded by (seed, epoch) and the augmentation randomness from
(seed, step, slot). So a run resumed at step s sees exactly the batches an
uninterrupted run would, whatever the number of workers.

A video that fails to decode is replaced by the next one in the index; the
failure is counted and its path returned with the batch (``batch["bad"]``)
so the training loop logs it and stops when the fraction passes
``max_bad_fraction``. A run never dies on one bad file.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from benchmark.data.samplers import ShortVideo
from benchmark.device import single_thread_worker
from benchmark.errors import UserError

log = logging.getLogger(__name__)
MAX_REPLACEMENTS = 20


def sample_seed(seed: int, step: int, slot: int) -> int:
    digest = hashlib.blake2b(f"{seed}/{step}/{slot}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


class StepBatches(Sampler):
    """Yields, for steps start..total-1, a list of (step, slot, video_index) addresses."""

    def __init__(self, num_videos: int, batch_size: int, total_steps: int, seed: int, start_step: int = 0):
        self.n, self.batch, self.total, self.seed, self.start = num_videos, batch_size, total_steps, seed, start_step

    def _video(self, position: int) -> int:
        epoch, offset = divmod(position, self.n)
        perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return int(perm[offset])

    def epoch_of(self, step: int) -> int:
        return (step * self.batch) // self.n

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        for step in range(self.start, self.total):
            base = step * self.batch
            yield [(step, slot, self._video(base + slot)) for slot in range(self.batch)]

    def __len__(self) -> int:
        return max(0, self.total - self.start)


# what the loader adds to every sample (label only for needs_labels methods, but never a sampler's own)
LOADER_KEYS = frozenset({"index", "label", "bad"})


class UndecodableVideos(UserError):
    """Every replacement candidate for one sample failed: the data, not the run, is broken."""


class SampledVideos(Dataset):
    """records x sampler -> samples. ``__getitem__`` takes a (step, slot, video_index) address or an int."""

    def __init__(
        self,
        records: Sequence,
        sampler,
        decoder: str = "auto",
        seed: int = 0,
        with_labels: bool = False,
        keep_decoded: bool = False,
    ):
        self.records = list(records)
        self.sampler = sampler
        self.decoder = decoder
        self.seed = seed
        self.with_labels = with_labels
        # training reads each video many times: small ones stay decoded (benchmark.data.video.SmallVideoCache);
        # evaluation reads each once, where decoding a whole video would cost more than the frames it needs
        self.keep_decoded = keep_decoded
        self._cache = None  # made in the process that reads (each DataLoader worker its own)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, address: Any) -> dict:
        from benchmark.data.video import SmallVideoCache, VideoDecodeError, open_video

        if self.keep_decoded and self._cache is None:
            self._cache = SmallVideoCache()
        opener = self._cache.open if self.keep_decoded else open_video
        if isinstance(address, (int, np.integer)):
            step, slot, index = 0, int(address), int(address)
        else:
            step, slot, index = address
        rng = np.random.default_rng(sample_seed(self.seed, step, slot))
        # v2 transforms draw from torch's CPU generator. Only that one is seeded: torch.manual_seed also queues
        # a lazy CUDA seed on CUDA builds, whose stack capture cost 0.1-1.4 ms per sample (results/perf/learning.md)
        torch.default_generator.manual_seed(int(rng.integers(2**62)))
        bad: list[str] = []
        for attempt in range(MAX_REPLACEMENTS):
            record = self.records[(index + attempt) % len(self.records)]
            try:
                with opener(record.path, self.decoder) as video:
                    sample = self.sampler(video, rng)
            except (VideoDecodeError, ShortVideo, OSError) as exc:
                bad.append(f"{record.path}: {exc}")
                continue
            taken = LOADER_KEYS.intersection(sample) if isinstance(sample, dict) else None
            if taken is None or taken:  # a plugin sampler's "index" would be overwritten, its "bad" dropped
                name = getattr(type(self.sampler), "registry_name", None) or type(self.sampler).__name__
                got = f"the key(s) {sorted(taken)}, which the loader adds" if taken else f"a {type(sample).__name__}"
                raise UserError(f"sampler '{name}' returned {got}: a sample is a dict of tensors whose keys are not "
                                f"{', '.join(sorted(LOADER_KEYS))} (docs/adding-a-method.md, section 3)")  # fmt: skip
            sample["index"] = torch.tensor((index + attempt) % len(self.records))
            if self.with_labels:
                sample["label"] = torch.tensor(record.label)
            sample["bad"] = bad
            return sample
        raise UndecodableVideos(
            f"{MAX_REPLACEMENTS} videos in a row failed to decode (last: {bad[-1]}); run `vssl check-data`"
        )


def collate(samples: list[dict]) -> dict:
    bad = [b for s in samples for b in s.pop("bad", [])]
    try:
        batch = default_collate(samples)
    except RuntimeError:
        for key in samples[0]:
            shapes = sorted({tuple(s[key].shape) for s in samples if torch.is_tensor(s.get(key))})
            if len(shapes) > 1:
                raise UserError(
                    f"the sampler's samples differ in shape under '{key}' ({', '.join(map(str, shapes))}): every sample "
                    "of a batch must have the same shapes (docs/adding-a-method.md, section 3)"
                ) from None
        raise
    batch["bad"] = bad
    return batch


def make_loader(
    dataset: SampledVideos,
    batches: Sampler | None = None,
    batch_size: int = 32,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """Training (``batches`` = StepBatches) or ordered evaluation (plain, in index order). ``pin_memory``: page-
    locked batches, so that the copy to a GPU (non_blocking) overlaps the step."""
    # its own generator: the loader's base seed is drawn from it, not from the global RNG, so starting (or
    # resuming) a loader never shifts the training step's random numbers (samples are seeded by address anyway)
    common: dict[str, Any] = dict(
        num_workers=num_workers,
        collate_fn=collate,
        persistent_workers=False,
        generator=torch.Generator(),
        pin_memory=pin_memory,
    )
    if num_workers > 0:
        common.update(prefetch_factor=4, worker_init_fn=single_thread_worker)
    if batches is not None:
        return DataLoader(dataset, batch_sampler=batches, **common)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, **common)
