"""Worker processes that Ctrl-C does not strand: they ignore SIGINT, so the interrupt reaches the parent alone,
which cancels what is queued and stops them (a spawn ProcessPoolExecutor interrupted mid-map could otherwise
hang in shutdown, and every worker printed its own KeyboardInterrupt traceback)."""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor


def ignore_sigint() -> None:
    """A worker initializer: the parent handles Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A spawn ProcessPoolExecutor (fork after threads can deadlock) whose workers ignore SIGINT; on an exception
    in the parent (Ctrl-C included) the queued jobs are cancelled and only the running ones are waited for.
    (Terminating the workers instead makes the executor's own thread fail on the cancelled jobs.)"""
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=ignore_sigint)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # only the jobs already running finish (one each)
        raise
    pool.shutdown(wait=True)
