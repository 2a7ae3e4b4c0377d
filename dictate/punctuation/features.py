"""Hashed features of a ±3-word window around each gap between words, computed for a whole batch
of paragraphs at once with numpy (the only per-word Python work is one dict lookup).

Each word key is hashed once (64-bit, stable across runs and machines) and cached; every feature
template mixes the template number with the hashes of the words it looks at, and the top
`bits` bits of the mix are the feature's row in the weight matrix."""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np
from numpy.typing import NDArray

FEATURE_VERSION = 1
WINDOW = 3
_M = np.uint64(0x9E3779B97F4A7C15)  # odd constant of the golden ratio: a good multiplicative mixer
_PAD_LEFT = np.uint64(0x5851F42D4C957F2D)
_PAD_RIGHT = np.uint64(0x14057B7EF767814F)
_SHIFT29 = np.uint64(29)
_POS_BUCKETS = np.array([0, 1, 2, 3, 4, 5, 7, 9, 12, 16, 20, 25, 30, 40, 60], dtype=np.int64)

# (name, parts): a part is ("w", k) the word at offset k, or ("s", k) its 3-letter suffix,
# ("p", 0) the bucketed distance from the paragraph start, ("e", 0) to its end.
TEMPLATES: tuple[tuple[tuple[str, int], ...], ...] = (
    (),  # bias
    (("w", -3),), (("w", -2),), (("w", -1),), (("w", 0),), (("w", 1),), (("w", 2),), (("w", 3),),
    (("w", 0), ("w", 1)), (("w", -1), ("w", 0)), (("w", 1), ("w", 2)), (("w", -2), ("w", -1)),
    (("w", -1), ("w", 0), ("w", 1)), (("w", 0), ("w", 1), ("w", 2)), (("w", -2), ("w", -1), ("w", 0)),
    (("s", 0),), (("s", 0), ("w", 1)), (("s", 0), ("s", 1)),
    (("p", 0),), (("e", 0),), (("e", 0), ("w", 0)),
)
N_FEATURES = len(TEMPLATES)


def stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


class Hasher:
    """Word key -> (word hash, suffix hash), cached; bounded so a long-running app does not grow."""

    MAX_CACHE = 500_000

    def __init__(self) -> None:
        self._cache: dict[str, tuple[int, int]] = {}

    def lookup(self, keys: Sequence[str]) -> tuple[NDArray[np.uint64], NDArray[np.uint64]]:
        cache = self._cache
        if len(cache) > self.MAX_CACHE:
            cache.clear()
        pairs = []
        append = pairs.append
        for key in keys:
            pair = cache.get(key)
            if pair is None:
                pair = (stable_hash("w:" + key), stable_hash("s:" + key[-3:]))
                cache[key] = pair
            append(pair)
        arr = np.array(pairs, dtype=np.uint64).reshape(-1, 2)
        return arr[:, 0], arr[:, 1]


def _mix(h: NDArray[np.uint64], part: NDArray[np.uint64]) -> NDArray[np.uint64]:
    h = (h ^ part) * _M
    return h ^ (h >> _SHIFT29)


def extract(keys: Sequence[str], lengths: Sequence[int], bits: int, hasher: Hasher) -> NDArray[np.int64]:
    """(n_words, N_FEATURES) row indices for the concatenated paragraphs of `lengths` words each."""
    n = len(keys)
    out = np.empty((n, N_FEATURES), dtype=np.int64)
    if n == 0:
        return out
    words, suffixes = hasher.lookup(keys)
    lengths_arr = np.asarray(lengths, dtype=np.int64)
    starts = np.repeat(np.cumsum(lengths_arr) - lengths_arr, lengths_arr)
    idx = np.arange(n, dtype=np.int64)
    pos = idx - starts  # position in the paragraph
    to_end = np.repeat(lengths_arr, lengths_arr) - 1 - pos
    shifted: dict[tuple[str, int], NDArray[np.uint64]] = {}

    def part(kind: str, k: int) -> NDArray[np.uint64]:
        key = (kind, k)
        if key not in shifted:
            if kind == "p":
                shifted[key] = np.searchsorted(_POS_BUCKETS, pos, side="right").astype(np.uint64) + np.uint64(1000)
            elif kind == "e":
                shifted[key] = np.searchsorted(_POS_BUCKETS, to_end, side="right").astype(np.uint64) + np.uint64(2000)
            else:
                base = words if kind == "w" else suffixes
                j = np.clip(idx + k, 0, n - 1)
                inside = (pos + k >= 0) & (to_end - k >= 0)
                shifted[key] = np.where(inside, base[j], _PAD_LEFT if k < 0 else _PAD_RIGHT)
        return shifted[key]

    shift = np.uint64(64 - bits)
    with np.errstate(over="ignore"):
        for t, parts in enumerate(TEMPLATES):
            h = np.full(n, np.uint64(stable_hash(f"t{t}")), dtype=np.uint64)
            for kind, k in parts:
                h = _mix(h, part(kind, k))
            h = _mix(h, np.uint64(t + 1))
            out[:, t] = (h >> shift).astype(np.int64)
    return out
