"""How likely a pause of d seconds is after a word, for each mark: the acoustic cue that text-only
training cannot see, fused late with the text model's scores.

Per mark a log-normal over the gap between one word's end and the next word's start. Medians
follow the read-speech literature's rough figures (no pause inside a phrase, a short one at a
comma, longer at a sentence end); the spreads are wide on purpose, so the cue nudges the text
model rather than overriding it, and the fusion weight (config: punctuation.pause_weight) sets
how hard it nudges."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dictate.punctuation.text import N_CLASSES

# (median pause in seconds, sigma of log pause) per class, in text.CLASS_NAMES order.
PAUSE_PRIORS: tuple[tuple[float, float], ...] = (
    (0.06, 1.0),  # none
    (0.25, 0.9),  # comma
    (0.55, 0.8),  # period
    (0.55, 0.8),  # question
    (0.55, 0.8),  # exclamation
    (0.35, 0.9),  # colon
    (0.40, 0.9),  # semicolon
    (0.35, 0.9),  # dash
    (0.70, 0.9),  # ellipsis
)
assert len(PAUSE_PRIORS) == N_CLASSES
MIN_PAUSE_S = 0.01  # timestamps are ~10-20 ms apart at best; a zero or overlap means "no pause"
MAX_PAUSE_S = 5.0

_MU = np.log(np.array([m for m, _ in PAUSE_PRIORS]))
_SIGMA = np.array([s for _, s in PAUSE_PRIORS])


def pause_log_likelihood(pauses_s: NDArray[np.floating]) -> NDArray[np.float64]:
    """(n, N_CLASSES) log p(pause | mark), up to a per-row constant (rows are renormalised later).
    NaN pauses (unknown, e.g. after the last word) give zeros: no evidence either way."""
    d = np.clip(np.asarray(pauses_s, dtype=np.float64), MIN_PAUSE_S, MAX_PAUSE_S)
    z = (np.log(d)[:, None] - _MU[None, :]) / _SIGMA[None, :]
    ll = -0.5 * z * z - np.log(_SIGMA)[None, :]
    ll -= ll.max(axis=1, keepdims=True)
    ll[np.isnan(np.asarray(pauses_s, dtype=np.float64))] = 0.0
    return ll
