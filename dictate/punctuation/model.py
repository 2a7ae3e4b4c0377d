"""The personal punctuation model: hashed-feature multinomial logistic regression plus per-class
calibration offsets, a truecaser and the author's written forms of dash and ellipsis.

Saved as a versioned .npz (plain arrays, loaded with allow_pickle=False); applying it is a
gather-and-sum over the weight matrix, so it runs at hundreds of thousands of words per second."""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

from dictate.punctuation import features
from dictate.punctuation.errors import PunctuationError
from dictate.punctuation.pauses import pause_log_likelihood
from dictate.punctuation.text import (
    CAPITAL,
    CLASS_NAMES,
    MIXED,
    N_CLASSES,
    NOALPHA,
    SENTENCE_END,
    UPPER,
    Parsed,
    capitalize,
    key_of,
    lower,
    parse,
    recase,
    render,
    split_word,
)
from dictate.types import Word
from dictate.fsutil import write_atomic

log = logging.getLogger(__name__)

FORMAT_NAME = "dictate-punctuation"
MODEL_VERSION = 1
DEFAULT_PAUSE_WEIGHT = 0.3  # the config default; conservative: a nudge, not a rule
_END_MASK = np.full(N_CLASSES, -np.inf)
_END_MASK[list(SENTENCE_END)] = 0.0


@dataclass
class Prediction:
    """Per word: the chosen mark and the fused class probabilities (rows sum to 1)."""

    labels: NDArray[np.int64]
    probabilities: NDArray[np.float64]


@dataclass(eq=False)
class PunctuationModel:
    weights: NDArray[np.float32]  # (2**bits, N_CLASSES)
    offsets: NDArray[np.float32]  # per-class calibration added to the logits
    bits: int
    truecase: dict[str, str]  # lower-case key -> the author's usual casing of the word (non-lower only)
    cap_after: tuple[bool, ...]  # per class: does the author start the next word with a capital?
    forms: tuple[str, ...]  # how each mark is written (the author's dash and ellipsis)
    meta: dict[str, Any] = field(default_factory=dict)
    _hasher: features.Hasher = field(default_factory=features.Hasher, repr=False)

    # -- scoring -------------------------------------------------------------------------------
    def logits(self, keys: Sequence[str], lengths: Sequence[int]) -> NDArray[np.float64]:
        """Text-only calibrated scores (n_words, N_CLASSES) for concatenated paragraphs."""
        rows = features.extract(keys, lengths, self.bits, self._hasher)
        scores = self.weights[rows].sum(axis=1, dtype=np.float32).astype(np.float64)
        return scores + self.offsets

    def predict(
        self,
        keys: Sequence[str],
        lengths: Sequence[int],
        *,
        pauses_s: NDArray[np.floating] | None = None,
        pause_weight: float = 0.0,
        source_labels: Sequence[int] | None = None,
        source_weight: float = 0.0,
        final: bool = True,
    ) -> Prediction:
        """Marks for every word. Late fusion: text logits + pause_weight * log p(pause | mark)
        + source_weight for the mark the engine itself wrote. With both weights 0 this is the
        text model alone. `final`: each paragraph's last word ends a sentence."""
        scores = self.logits(keys, lengths)
        if pauses_s is not None and pause_weight:
            scores = scores + pause_weight * pause_log_likelihood(pauses_s)
        if source_labels is not None and source_weight:
            src = np.asarray(source_labels, dtype=np.int64)
            scores[np.arange(len(src)), src] += source_weight
        if final and len(scores):
            ends = np.cumsum(np.asarray(lengths, dtype=np.int64)) - 1
            ends = ends[np.asarray(lengths) > 0]
            scores[ends] += _END_MASK
        scores -= scores.max(axis=1, keepdims=True)
        probs = np.exp(scores)
        probs /= probs.sum(axis=1, keepdims=True)
        return Prediction(labels=probs.argmax(axis=1), probabilities=probs)

    # -- text out ------------------------------------------------------------------------------
    def _cased(self, parsed: Parsed, labels: Sequence[int]) -> list[str]:
        """Truecase every word, then capitalise where the predicted marks start a sentence.
        Capitals the input had mid-sentence (proper nouns from the engine) are kept."""
        mid_caps = _mid_caps(parsed)
        return [self.case_word(parsed, i, labels[i - 1] if i else None, mid_caps) for i in range(len(parsed.words))]

    def case_word(self, parsed: Parsed, i: int, previous_label: int | None, mid_caps: set[str] | None = None) -> str:
        """Word i as written out, given the mark chosen after the word before it (None: it starts
        the text). Only its capitals can change, never its letters."""
        if mid_caps is None:
            mid_caps = _mid_caps(parsed, i + 1)
        lead, core, closers = split_word(parsed.words[i])
        key = parsed.keys[i]
        case = parsed.cases[i]
        input_start = i == 0 or parsed.labels[i - 1] in SENTENCE_END
        own = core
        form = self.truecase.get(key)
        if form is not None and key_of(form) == key and len(form) == len(core):
            core = recase(core, form)
        elif case in (UPPER, MIXED) or (case == CAPITAL and (not input_start or key in mid_caps)):
            pass  # an acronym, or a proper noun the engine or the writer capitalised
        elif case != NOALPHA:
            core = lower(core)
        if previous_label is None or self.cap_after[previous_label]:
            core = capitalize(core)
        if core.casefold() != own.casefold():  # the model sets marks and capitals, never a word
            core = own
        return lead + core + closers

    def _render(self, parsed: Parsed, labels: Sequence[int]) -> str:
        return render(self._cased(parsed, labels), list(labels), self.forms)

    def punctuate_text(self, text: str, *, source_weight: float = 0.0) -> str:
        """Re-punctuate text, one paragraph per line: the same words in the same order, with the
        author's marks and capitals. Blank lines stay blank."""
        lines = text.split("\n")
        parsed = [parse(line) for line in lines]
        keys = [k for p in parsed for k in p.keys]
        lengths = [len(p.keys) for p in parsed]
        source = [lab for p in parsed for lab in p.labels]
        pred = self.predict(keys, lengths, source_labels=source, source_weight=source_weight).labels
        out: list[str] = []
        at = 0
        for p, n in zip(parsed, lengths):
            out.append(self._render(p, pred[at:at + n].tolist()) if n else "")
            at += n
        return "\n".join(out)

    def _words_input(self, words: Sequence[Word]) -> tuple[Parsed, NDArray[np.float64]]:
        """Engine words -> one parsed paragraph and the pause after each of its words (NaN: unknown)."""
        out_words: list[str] = []
        keys: list[str] = []
        labels: list[int] = []
        cases: list[int] = []
        pauses: list[float] = []
        for n, w in enumerate(words):
            p = parse(w.text)
            if not p.words:  # a bare mark the engine emitted as a word: it belongs to the word before
                if labels and p.labels == [] and w.text.strip():
                    labels[-1] = parse("x" + w.text.strip()).labels[-1] or labels[-1]
                continue
            out_words.extend(p.words)
            keys.extend(p.keys)
            labels.extend(p.labels)
            cases.extend(p.cases)
            pauses.extend([0.0] * (len(p.words) - 1))
            nxt = next((v for v in words[n + 1:] if v.text.strip()), None)
            pauses.append(max(0.0, nxt.start_s - w.end_s) if nxt is not None else float("nan"))
        return Parsed(out_words, keys, labels, cases, [], []), np.asarray(pauses, dtype=np.float64)

    def probabilities_for_words(
        self, words: Sequence[Word], pause_weight: float = DEFAULT_PAUSE_WEIGHT, *,
        source_weight: float = 0.0, final: bool = True,
    ) -> tuple[Parsed, Prediction]:
        parsed, pauses = self._words_input(words)
        pred = self.predict(parsed.keys, [len(parsed.keys)], pauses_s=pauses, pause_weight=pause_weight,
                            source_labels=parsed.labels, source_weight=source_weight, final=final)
        return parsed, pred

    def punctuate_words(
        self, words: Sequence[Word], pause_weight: float = DEFAULT_PAUSE_WEIGHT, *,
        source_weight: float = 0.0, final: bool = True,
    ) -> str:
        """Engine words (with timestamps) of one paragraph -> re-punctuated text. Pauses between
        words count with `pause_weight` (0: text only); `source_weight` > 0 lets the engine's own
        marks count too; `final=False` for text that continues (live dictation)."""
        parsed, pred = self.probabilities_for_words(words, pause_weight, source_weight=source_weight, final=final)
        if not parsed.words:
            return ""
        return self._render(parsed, pred.labels.tolist())

    # -- files ---------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write atomically: a crash leaves the old model, never half a new one."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(self.truecase)
        arrays = {
            "format": np.array(FORMAT_NAME),
            "version": np.array(MODEL_VERSION, dtype=np.int64),
            "feature_version": np.array(features.FEATURE_VERSION, dtype=np.int64),
            "bits": np.array(self.bits, dtype=np.int64),
            "classes": np.array(CLASS_NAMES),
            "weights": self.weights.astype(np.float16),
            "offsets": self.offsets.astype(np.float32),
            "cap_after": np.array(self.cap_after, dtype=bool),
            "forms": np.array(self.forms),
            "truecase_keys": np.array(keys, dtype=str),
            "truecase_forms": np.array([self.truecase[k] for k in keys], dtype=str),
            "meta": np.array(json.dumps(self.meta, ensure_ascii=False)),
        }
        try:
            write_atomic(path, lambda f: np.savez_compressed(f, **arrays))
        except OSError as exc:
            raise PunctuationError(f"cannot write the model to {path}: {exc.strerror or exc}") from exc
        return path


def load_model(path: str | Path) -> PunctuationModel:
    """Read a model written by `PunctuationModel.save`; anything else is a one-line PunctuationError."""
    path = Path(path).expanduser()
    retrain = "train a new one with `dictate punctuation train`"
    if not path.is_file():
        raise PunctuationError(f"punctuation model {path} not found; {retrain}")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise PunctuationError(f"{path} is not a punctuation model or is damaged ({type(exc).__name__}); {retrain}") from exc
    if str(data.get("format", "")) != FORMAT_NAME:
        raise PunctuationError(f"{path} is not a punctuation model; {retrain}")
    try:
        version = int(data["version"])
        if version > MODEL_VERSION:
            raise PunctuationError(f"{path} was made by a newer dictate (model version {version}); update dictate or {retrain}")
        if version != MODEL_VERSION or int(data["feature_version"]) != features.FEATURE_VERSION:
            raise PunctuationError(f"{path} was made by an older dictate (model version {version}); {retrain}")
        bits = int(data["bits"])
        weights = data["weights"].astype(np.float32)
        classes = tuple(str(c) for c in data["classes"])
        offsets = data["offsets"].astype(np.float32)
        cap_after = tuple(bool(b) for b in data["cap_after"])
        forms = tuple(str(f) for f in data["forms"])
        truecase = dict(zip((str(k) for k in data["truecase_keys"]), (str(v) for v in data["truecase_forms"])))
        meta = json.loads(str(data["meta"]))
    except PunctuationError:
        raise
    except (KeyError, ValueError, TypeError) as exc:
        raise PunctuationError(f"{path} is an incomplete punctuation model ({exc}); {retrain}") from exc
    if (classes != CLASS_NAMES or weights.shape != (1 << bits, N_CLASSES) or offsets.shape != (N_CLASSES,)
            or len(cap_after) != N_CLASSES or len(forms) != N_CLASSES or not np.isfinite(weights).all()):
        raise PunctuationError(f"{path} does not match this dictate's punctuation classes or shapes; {retrain}")
    return PunctuationModel(weights=weights, offsets=offsets, bits=bits, truecase=truecase, cap_after=cap_after,
                            forms=forms, meta=meta)


def _mid_caps(parsed: Parsed, upto: int | None = None) -> set[str]:
    """Keys the input capitalised in mid-sentence (up to word `upto`): names the engine knew."""
    n = len(parsed.words) if upto is None else upto
    return {parsed.keys[i] for i in range(1, n)
            if parsed.cases[i] in (CAPITAL, UPPER, MIXED) and parsed.labels[i - 1] not in SENTENCE_END}


__all__ = ["PunctuationModel", "Prediction", "load_model", "MODEL_VERSION"]
