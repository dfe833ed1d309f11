"""Peak memory of a process and everything it starts (a stage: the runner, its kernel, the
kernel's workers), sampled on a thread while it runs.

What is counted is resident anonymous memory (RSS less the pages backed by files): what the
process itself allocated and the kernel cannot drop. Pages of memory-mapped files (the prepared
images, the feature cache) are left out: the kernel reads them in and drops them as it needs.
"""

from __future__ import annotations

import threading

import psutil


def anonymous_bytes(process: psutil.Process) -> int:
    """Resident anonymous memory of one process (RSS less file-backed and shared pages, where the
    system tells them apart; RSS elsewhere)."""
    info = process.memory_info()
    return info.rss - getattr(info, "shared", 0)


def tree_bytes(root: psutil.Process) -> int:
    """Resident anonymous memory of `root` and all its descendants, now."""
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += anonymous_bytes(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass  # ended between the listing and the reading
    return total


class PeakMemory:
    """`with PeakMemory() as peak:` samples this process's tree every `interval` seconds;
    `peak.bytes` is the most seen at once (read it during or after the block)."""

    def __init__(self, interval: float = 0.2, pid: int | None = None):
        self.interval, self.bytes = interval, 0
        self._root = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)

    def _sample(self) -> None:
        while True:
            self.bytes = max(self.bytes, tree_bytes(self._root))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mb(self) -> float:
        return round(self.bytes / 2**20, 1)
