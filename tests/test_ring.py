"""RingBuffer: every sample read exactly once and in order under a concurrent writer and reader;
overflow is counted, never silently overwritten."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dictate.audio.ring import RingBuffer


def test_write_read_wraps_around_in_order():
    ring = RingBuffer(10)
    assert ring.write(np.arange(7, dtype=np.float32)) == 7
    assert ring.read(5).tolist() == [0, 1, 2, 3, 4]
    assert ring.write(np.arange(7, 14, dtype=np.float32)) == 7  # wraps past the end
    assert ring.available == 9
    assert ring.read().tolist() == list(range(5, 14))
    assert ring.available == 0
    assert ring.read().size == 0
    assert ring.lost_samples == 0 and ring.overflows == 0


def test_full_ring_keeps_unread_audio_and_counts_the_rest():
    ring = RingBuffer(8)
    ring.write(np.arange(6, dtype=np.float32))
    assert ring.write(np.arange(6, 11, dtype=np.float32)) == 2  # only 2 free
    assert ring.lost_samples == 3 and ring.overflows == 1
    assert ring.write(np.ones(4, dtype=np.float32)) == 0
    assert ring.lost_samples == 7 and ring.overflows == 2
    # the unread audio is intact, the dropped samples are the newest ones
    assert ring.read().tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert ring.written_total == 8


def test_skip_discards_without_copying():
    ring = RingBuffer(16)
    ring.write(np.arange(10, dtype=np.float32))
    assert ring.skip(4) == 4
    assert ring.read(2).tolist() == [4, 5]
    assert ring.skip(100) == 4
    assert ring.available == 0


def test_rejects_zero_capacity():
    with pytest.raises(ValueError):
        RingBuffer(0)


@settings(max_examples=60, deadline=None)
@given(capacity=st.integers(1, 64),
       ops=st.lists(st.tuples(st.booleans(), st.integers(0, 80)), min_size=1, max_size=80))
def test_sequential_model(capacity, ops):
    """Against a simple model: reads return the accepted samples in order; drops are counted."""
    ring = RingBuffer(capacity)
    model: list[float] = []
    next_value = 0
    lost = 0
    for is_write, n in ops:
        if is_write:
            data = np.arange(next_value, next_value + n, dtype=np.float32)
            next_value += n
            accepted = ring.write(data)
            free = capacity - len(model)
            assert accepted == min(n, free)
            model.extend(data[:accepted].tolist())
            lost += n - accepted
        else:
            got = ring.read(n).tolist()
            assert got == model[:len(got)]
            assert len(got) == min(n, len(model))
            del model[:len(got)]
        assert ring.available == len(model)
        assert ring.lost_samples == lost


def _run_concurrent(capacity: int, total: int, seed: int) -> tuple[np.ndarray, RingBuffer]:
    """A writer thread pushing random-size blocks (like callbacks) and a reader draining at random
    moments; the writer waits for space instead of overflowing, so nothing may be lost."""
    ring = RingBuffer(capacity)
    rng = random.Random(seed)
    sizes = []
    left = total
    while left:
        n = min(left, rng.randint(1, capacity))
        sizes.append(n)
        left -= n
    values = np.arange(total, dtype=np.float32) % 16_000_000  # exact in float32
    received: list[np.ndarray] = []

    def writer() -> None:
        pos = 0
        for n in sizes:
            while capacity - ring.available < n:
                time.sleep(0)  # the reader will make room
            assert ring.write(values[pos:pos + n]) == n
            pos += n

    t = threading.Thread(target=writer, name="test-ring-writer")
    t.start()
    got = 0
    reader_rng = random.Random(seed + 1)
    while got < total:
        chunk = ring.read(reader_rng.randint(1, capacity * 2))
        got += chunk.size
        if chunk.size:
            received.append(chunk)
        if reader_rng.random() < 0.3:
            time.sleep(0)
    t.join()
    return np.concatenate(received), ring


@pytest.mark.parametrize("seed", range(4))
def test_concurrent_writer_and_reader_every_sample_once_in_order(seed):
    total = 400_000
    out, ring = _run_concurrent(capacity=4096, total=total, seed=seed)
    assert out.size == total
    np.testing.assert_array_equal(out, np.arange(total, dtype=np.float32))
    assert ring.lost_samples == 0 and ring.overflows == 0
    assert ring.written_total == ring.read_total == total


def test_concurrent_overflow_is_counted_and_read_audio_stays_in_order():
    """A writer that never waits and a slow reader: whatever is read is an in-order subsequence
    and read + lost == written."""
    ring = RingBuffer(1000)
    total = 200_000
    values = np.arange(total, dtype=np.float32)

    def writer() -> None:
        for pos in range(0, total, 160):
            ring.write(values[pos:pos + 160])
            if pos % 3200 == 0:
                time.sleep(0.0005)

    t = threading.Thread(target=writer, name="test-ring-writer")
    t.start()
    chunks = []
    while t.is_alive() or ring.available:
        chunks.append(ring.read())
        time.sleep(0.002)
    t.join()
    out = np.concatenate(chunks)
    assert np.all(np.diff(out) > 0)  # strictly increasing: nothing doubled or reordered
    assert out.size + ring.lost_samples == total
    assert (ring.lost_samples > 0) == (ring.overflows > 0)
