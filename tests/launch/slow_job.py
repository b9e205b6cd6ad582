"""A CellJob whose first attempt at some cells stalls until SLURM's time-limit warning arrives.

So the warning always lands mid-training, whatever the machine's load and SLURM's 30-s ticks: step
``stall_at`` of the first attempt waits for the signal (at most ``max_wait_s``), then completes
normally; pre-training checkpoints there and submitit requeues the job. Later attempts run at full
speed. Every step still runs the real method, so the requeued run must end exactly like an
uninterrupted one. Sent to the job by value (cloudpickle.register_pickle_by_value): jobs cannot
import tests/.
"""

from __future__ import annotations

import signal
import time

from benchmark.launch.cell import CellJob
from benchmark.rundir import RunDir


class StallFirstAttempt(CellJob):
    def __init__(self, slow_cells: set[str], stall_at: int, max_wait_s: float = 150.0):
        self.slow_cells = set(slow_cells)
        self.stall_at = stall_at
        self.max_wait_s = max_wait_s

    def __call__(self, spec: dict) -> dict:
        first = not RunDir(spec["run_path"]).env().get("requeues")
        if spec["cell_id"] in self.slow_cells and first:
            self._stall(spec["tree"]["method"]["name"])
        return super().__call__(spec)

    def _stall(self, method_name: str) -> None:
        import benchmark.train as train
        from benchmark.registry import METHODS

        seen = []

        class Recording(train.CheckpointRequest):  # notes the signal, then lets pre-training handle it
            def install(self, stop_after: bool = False) -> None:
                super().install(stop_after)
                for sig in self.signals():
                    handler = signal.getsignal(sig)

                    def noted(signum, frame, handler=handler):
                        seen.append(signum)
                        handler(signum, frame)

                    signal.signal(sig, noted)

        train.CheckpointRequest = Recording
        cls = METHODS.get(method_name)
        step, stall_at, max_wait = cls.training_step, self.stall_at, self.max_wait_s

        def stalling_step(method, batch, progress):
            if progress.step + 1 == stall_at:
                t0 = time.monotonic()
                while not seen and time.monotonic() - t0 < max_wait:
                    time.sleep(0.2)
            return step(method, batch, progress)

        cls.training_step = stalling_step
