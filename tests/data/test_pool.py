"""benchmark.data.pool: Ctrl-C reaches the parent alone, which cancels the queue instead of hanging on it."""

from __future__ import annotations

import signal
import time

import pytest

from benchmark.data.pool import worker_pool


def _sigint_handler(_: int) -> bool:
    return signal.getsignal(signal.SIGINT) == signal.SIG_IGN


def _nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def test_workers_ignore_sigint():
    with worker_pool(2) as pool:
        assert all(pool.map(_sigint_handler, range(2)))


def test_an_interrupt_in_the_parent_cancels_the_queued_jobs():
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt), worker_pool(2) as pool:
        futures = [pool.submit(_nap, 0.5) for _ in range(40)]  # 10 s of work for two workers
        time.sleep(0.2)
        raise KeyboardInterrupt
    assert time.monotonic() - start < 6  # the running jobs finished, the queued ones never started
    assert sum(f.cancelled() for f in futures) >= 30
