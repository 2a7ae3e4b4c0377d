"""A preallocated float32 ring buffer between exactly one writer (the audio callback) and one reader.

No lock anywhere: the writer only advances `_written`, the reader only advances `_read`, and each
side publishes its counter after the copy, so the other side never sees a half-written region.
Both counters count samples since creation and only grow (Python ints do not wrap).

When the reader has fallen a whole capacity behind, the writer does not overwrite unread audio: it
keeps what is already there, drops the newest samples and counts them in `lost_samples` (and the
event in `overflows`). Capacity is chosen (minutes) so that this does not happen in practice.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


class RingBuffer:
    """Single-writer, single-reader float32 ring. Writer: `write()`. Reader: `read()`, `available`."""

    def __init__(self, capacity_samples: int) -> None:
        if capacity_samples <= 0:
            raise ValueError("ring capacity must be positive")
        self.capacity = int(capacity_samples)
        self._buf = np.zeros(self.capacity, dtype=np.float32)
        self._written = 0  # owned by the writer
        self._read = 0  # owned by the reader
        self.lost_samples = 0  # owned by the writer
        self.overflows = 0  # owned by the writer: write() calls that had to drop samples

    # -- writer side (the audio callback): no allocation beyond numpy views, no lock, no logging --

    def write(self, samples: NDArray[np.float32]) -> int:
        """Copy `samples` in; returns how many fit. The rest are dropped and counted, never
        written over unread audio."""
        n = samples.shape[0]
        free = self.capacity - (self._written - self._read)
        if n > free:
            self.lost_samples += n - free
            self.overflows += 1
            n = free
        if n <= 0:
            return 0
        start = self._written % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start:start + first] = samples[:first]
        if first < n:
            self._buf[:n - first] = samples[first:n]
        self._written += n  # publish after the copy
        return n

    # -- reader side --

    @property
    def available(self) -> int:
        """Samples written and not yet read."""
        return self._written - self._read

    @property
    def written_total(self) -> int:
        """Samples accepted since creation (lost ones excluded)."""
        return self._written

    @property
    def read_total(self) -> int:
        return self._read

    def read(self, max_samples: int | None = None) -> NDArray[np.float32]:
        """A copy of up to `max_samples` unread samples (all of them when None), oldest first."""
        n = self._written - self._read
        if max_samples is not None:
            n = min(n, max_samples)
        if n <= 0:
            return np.zeros(0, dtype=np.float32)
        start = self._read % self.capacity
        first = min(n, self.capacity - start)
        out = np.empty(n, dtype=np.float32)
        out[:first] = self._buf[start:start + first]
        if first < n:
            out[first:] = self._buf[:n - first]
        self._read += n  # publish after the copy: the writer may now reuse this space
        return out

    def skip(self, n: int) -> int:
        """Discard up to `n` unread samples without copying them; returns how many."""
        n = max(0, min(n, self._written - self._read))
        self._read += n
        return n
