"""Training: parse the writing, hash the features, fit the logistic regression with sparse AdaGrad
in mini-batches, calibrate the per-class offsets on out-of-fold predictions so every mark comes
out at the author's own rate, and learn the truecaser and the author's forms of dash and ellipsis."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from dictate.punctuation import features
from dictate.punctuation.errors import PunctuationError
from dictate.punctuation.model import PunctuationModel
from dictate.punctuation.text import (
    CAPITAL,
    DASH,
    DEFAULT_FORMS,
    ELLIPSIS,
    LOWER,
    N_CLASSES,
    NOALPHA,
    NONE,
    SENTENCE_END,
    UPPER,
    Parsed,
    parse,
    split_word,
)

log = logging.getLogger(__name__)

MIN_WORDS = 5_000  # below this the rare marks are too few to learn anything personal
RECOMMENDED_WORDS = 50_000
MAX_WORDS = 2_000_000  # more adds little and costs memory; the rest is left out (said in the log)


@dataclass(frozen=True)
class TrainOptions:
    bits: int = 18  # 2**18 rows x 9 classes: 4.7 MB as float16 on disk
    epochs: int = 0  # 0: by corpus size (auto_epochs)
    batch_size: int = 512
    learning_rate: float = 0.15
    none_weight: float = 0.4  # "no mark" is ~85% of gaps: down-weight it so rare marks get learnt
    folds: int = 3  # out-of-fold predictions for calibration
    # The final model is the average of the fold models, so the calibration measured on their
    # out-of-fold predictions holds for it (a refit on all data is more confident on rare marks,
    # and calibrated offsets then overshoot on new text). False: refit on everything.
    average_folds: bool = True
    calibrate: bool = True
    seed: int = 0


@dataclass
class _Data:
    parsed: list[Parsed]
    keys: list[str]
    lengths: NDArray[np.int64]
    labels: NDArray[np.int64]
    rows: NDArray[np.int32]  # (n_words, n_features)
    para_of_word: NDArray[np.int64]


def _prepare(paragraphs: Sequence[str], bits: int) -> _Data:
    parsed = [p for p in (parse(t) for t in paragraphs) if p.words]
    total = sum(len(p.words) for p in parsed)
    if total < MIN_WORDS:
        raise PunctuationError(
            f"the writing has {total:,} words; at least {MIN_WORDS:,} are needed "
            f"({RECOMMENDED_WORDS:,} or more give a model that knows your habits)"
        )
    if total > MAX_WORDS:
        kept, n = [], 0
        for p in parsed:
            if n >= MAX_WORDS:
                break
            kept.append(p)
            n += len(p.words)
        log.info("using the first %d of %d words", n, total)
        parsed = kept
    keys = [k for p in parsed for k in p.keys]
    lengths = np.array([len(p.keys) for p in parsed], dtype=np.int64)
    labels = np.array([lab for p in parsed for lab in p.labels], dtype=np.int64)
    rows = features.extract(keys, lengths, bits, features.Hasher()).astype(np.int32)
    para = np.repeat(np.arange(len(parsed)), lengths)
    return _Data(parsed, keys, lengths, labels, rows, para)


def auto_epochs(n_words: int) -> int:
    """Passes over the writing, by its size: AdaGrad on rare features needs several passes over a
    small corpus, a large one has the examples itself. About 200K words' worth of passes, 2 to 6:
    on held-out text 2 passes over 100K-200K words scored as well as the 4-6 used before (micro-F1
    0.373 vs 0.366 at 200K) in half the time, and 4 over 50K as well as 6."""
    return max(2, min(6, round(200_000 / max(1, n_words))))


def _fit(rows: NDArray[np.int32], labels: NDArray[np.int64], opts: TrainOptions,
         progress: Callable[[float], None] | None = None) -> NDArray[np.float32]:
    """Multinomial logistic regression, sparse AdaGrad: only the rows a batch touches are updated."""
    n, n_feat = rows.shape
    size = 1 << opts.bits
    weights = np.zeros((size, N_CLASSES), dtype=np.float32)
    grad_sq = np.full((size, N_CLASSES), 1e-6, dtype=np.float32)
    class_weight = np.ones(N_CLASSES, dtype=np.float32)
    class_weight[NONE] = opts.none_weight
    rng = np.random.default_rng(opts.seed)
    lr = np.float32(opts.learning_rate)
    epochs = opts.epochs or auto_epochs(n)
    steps = epochs * ((n + opts.batch_size - 1) // opts.batch_size)
    step = 0
    report_every = max(1, steps // 100)  # about each 1 %: a small corpus has far fewer than 200 steps
    # The distinct rows of a batch without sorting: every position writes itself into `slot` at its
    # row, the last write wins, and a position is its row's representative when it reads itself back.
    slot = np.zeros(size, dtype=np.int32)
    positions = np.arange(opts.batch_size * n_feat, dtype=np.int32)
    example_of = np.repeat(np.arange(opts.batch_size), n_feat)
    classes = np.arange(N_CLASSES, dtype=np.int64)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, opts.batch_size):
            batch = order[start:start + opts.batch_size]
            m = len(batch)
            xb = rows[batch]
            yb = labels[batch]
            logits = weights[xb].sum(axis=1)
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(m), yb] -= 1.0
            p *= class_weight[yb][:, None]
            flat = xb.ravel()
            pos = positions[:len(flat)]
            slot[flat] = pos
            first = slot[flat]
            is_rep = first == pos
            uniq = flat[is_rep]
            inv = (np.cumsum(is_rep, dtype=np.int64) - 1)[first]
            # Sum the gradient per touched row and class in one bincount (np.add.at is several times slower).
            cell = (inv * N_CLASSES)[:, None] + classes
            g = np.bincount(cell.ravel(), weights=p[example_of[:len(flat)]].ravel(), minlength=len(uniq) * N_CLASSES)
            g = g.reshape(len(uniq), N_CLASSES).astype(np.float32)
            acc = grad_sq[uniq] + g * g
            grad_sq[uniq] = acc
            weights[uniq] -= lr * g / np.sqrt(acc)
            step += 1
            if progress is not None and step % report_every == 0:
                progress(step / steps)
    return weights


def _log_probs(weights: NDArray[np.float32], rows: NDArray[np.int32]) -> NDArray[np.float64]:
    out = np.empty((len(rows), N_CLASSES), dtype=np.float64)
    for start in range(0, len(rows), 65536):  # bounded memory on a million words
        s = weights[rows[start:start + 65536]].sum(axis=1).astype(np.float64)
        s -= s.max(axis=1, keepdims=True)
        out[start:start + 65536] = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    return out


def calibrate(log_probs: NDArray[np.float64], labels: NDArray[np.int64], iterations: int = 60) -> NDArray[np.float32]:
    """Per-class offsets (none fixed at 0) such that argmax(log p + offset) picks each mark about as
    often as the author wrote it. Iterative proportional fitting in log space."""
    target = np.bincount(labels, minlength=N_CLASSES).astype(np.float64)
    offsets = np.zeros(N_CLASSES)
    for _ in range(iterations):
        pred = np.bincount((log_probs + offsets).argmax(axis=1), minlength=N_CLASSES).astype(np.float64)
        step = 0.5 * (np.log(target + 0.5) - np.log(pred + 0.5))
        step[NONE] = 0.0
        offsets = np.clip(offsets + step, -8.0, 8.0)
        if np.all(np.abs(pred - target) <= np.maximum(2.0, 0.03 * target)):
            break
    offsets[target == 0] = -8.0  # a mark the author never wrote is not invented
    return offsets.astype(np.float32)


def _truecaser(parsed: list[Parsed]) -> dict[str, str]:
    """Words the author capitalises in mid-sentence most of the time (names, "I", acronyms)."""
    seen: Counter[str] = Counter()  # mid-sentence occurrences per key, in any casing
    forms: dict[str, Counter[str]] = defaultdict(Counter)  # the capitalised ones, by form
    for p in parsed:
        labels, cases, keys = p.labels, p.cases, p.keys
        for i in range(1, len(keys)):
            case = cases[i]
            if case == NOALPHA or labels[i - 1] in SENTENCE_END:
                continue
            seen[keys[i]] += 1
            if case != LOWER:
                # Only the capitals are learnt (applying re-cases the word's own letters), so
                # "Warren’s" and "Warren's" are one form.
                forms[keys[i]][split_word(p.words[i])[1].replace("’", "'")] += 1
    out: dict[str, str] = {}
    for key, counts in forms.items():
        form, n = counts.most_common(1)[0]
        total = seen[key]
        if form != form.lower() and n * 2 > total and (n >= 2 or total == n):
            out[key] = form
    return out


def _cap_after(parsed: list[Parsed], truecase: dict[str, str]) -> tuple[bool, ...]:
    """Per mark: does the author start the next word with a capital (beyond its usual casing)?"""
    caps = np.zeros(N_CLASSES)
    total = np.zeros(N_CLASSES)
    for p in parsed:
        for i in range(len(p.words) - 1):
            nxt = p.keys[i + 1]
            if nxt in truecase or p.cases[i + 1] not in (LOWER, CAPITAL, UPPER):
                continue
            total[p.labels[i]] += 1
            caps[p.labels[i]] += p.cases[i + 1] in (CAPITAL, UPPER)
    out = []
    for c in range(N_CLASSES):
        if total[c] >= 3:
            out.append(bool(caps[c] * 2 > total[c]))
        else:
            out.append(c in SENTENCE_END and c != ELLIPSIS)
    return tuple(out)


def _forms(parsed: list[Parsed]) -> tuple[str, ...]:
    forms = list(DEFAULT_FORMS)
    dashes = Counter(f for p in parsed for f in p.dash_forms)
    if dashes:
        forms[DASH] = dashes.most_common(1)[0][0]
    ellipses = Counter(f for p in parsed for f in p.ellipsis_forms)
    if ellipses:
        forms[ELLIPSIS] = ellipses.most_common(1)[0][0]
    return tuple(forms)


def train_model(
    paragraphs: Sequence[str],
    options: TrainOptions = TrainOptions(),
    progress: Callable[[str, float], None] | None = None,
) -> PunctuationModel:
    """A model of the author of `paragraphs` (their own writing, punctuated as they like it)."""
    from dictate.punctuation.evaluate import style_figures  # evaluate imports model; keep the cycle lazy

    t0 = time.perf_counter()
    data = _prepare(paragraphs, options.bits)
    n = len(data.labels)
    options = dataclasses.replace(options, epochs=options.epochs or auto_epochs(n))  # by the whole corpus, not a fold
    offsets = np.zeros(N_CLASSES, dtype=np.float32)
    if options.calibrate and options.folds >= 2:
        rng = np.random.default_rng(options.seed + 1)
        fold_of_para = rng.integers(0, options.folds, size=len(data.lengths))
        fold = fold_of_para[data.para_of_word]
        oof = np.empty((n, N_CLASSES), dtype=np.float64)
        averaged = np.zeros((1 << options.bits, N_CLASSES), dtype=np.float32) if options.average_folds else None
        for k in range(options.folds):
            train_idx = np.flatnonzero(fold != k)
            test_idx = np.flatnonzero(fold == k)
            cb = (lambda f, k=k: progress("calibrating", (k + f) / options.folds)) if progress else None
            w = _fit(data.rows[train_idx], data.labels[train_idx], options, cb)
            oof[test_idx] = _log_probs(w, data.rows[test_idx])
            if averaged is not None:
                averaged += w / options.folds
            del w
        # Paragraph ends are forced to a sentence end at inference: calibrate on the gaps inside.
        inside = np.ones(n, dtype=bool)
        inside[np.cumsum(data.lengths) - 1] = False
        offsets = calibrate(oof[inside], data.labels[inside])
    if options.calibrate and options.folds >= 2 and averaged is not None:
        weights = averaged
    else:
        weights = _fit(data.rows, data.labels, options, (lambda f: progress("training", f)) if progress else None)
    truecase = _truecaser(data.parsed)
    style = style_figures(data.parsed)
    meta = {
        "words": int(n),
        "paragraphs": int(len(data.lengths)),
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "train_seconds": round(time.perf_counter() - t0, 2),
        "options": {k: getattr(options, k) for k in options.__dataclass_fields__},
        "style": style.as_dict(),
    }
    log.info("punctuation model: %d words in %.1f s", n, meta["train_seconds"])
    return PunctuationModel(weights=weights, offsets=offsets, bits=options.bits, truecase=truecase,
                            cap_after=_cap_after(data.parsed, truecase), forms=_forms(data.parsed), meta=meta)
