"""How well a model punctuates text whose real punctuation is known, and how its style compares:
per-mark precision/recall/F1, and the style figures (marks per 1,000 words, Oxford-comma rate,
mean sentence length) of the prediction next to the reference's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from dictate.punctuation.errors import PunctuationError
from dictate.punctuation.model import PunctuationModel
from dictate.punctuation.text import CLASS_NAMES, COMMA, MARK_CLASSES, N_CLASSES, NONE, PERIOD, QUESTION, EXCLAMATION, Parsed, parse

_LIST_CONJUNCTIONS = frozenset({"and", "or"})
_SENTENCE_STOPS = (PERIOD, QUESTION, EXCLAMATION)


@dataclass(frozen=True)
class MarkScore:
    name: str
    support: int  # how often the reference has it
    predicted: int
    correct: int

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.support if self.support else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass(frozen=True)
class Style:
    words: int
    marks_per_1000: dict[str, float]
    oxford_rate: float | None  # share of "A, B, and C" among detected lists; None: no lists
    lists: int
    mean_sentence_words: float

    def as_dict(self) -> dict:
        return {"words": self.words, "marks_per_1000": self.marks_per_1000, "oxford_rate": self.oxford_rate,
                "lists": self.lists, "mean_sentence_words": self.mean_sentence_words}


@dataclass(frozen=True)
class Report:
    marks: tuple[MarkScore, ...]
    micro: MarkScore  # every mark together ("all")
    reference: Style
    predicted: Style


def score(reference: Sequence[int], predicted: Sequence[int]) -> tuple[tuple[MarkScore, ...], MarkScore]:
    ref = np.asarray(reference, dtype=np.int64)
    pred = np.asarray(predicted, dtype=np.int64)
    if ref.shape != pred.shape:
        raise PunctuationError("reference and prediction have different numbers of words")
    marks = []
    for c in MARK_CLASSES:
        marks.append(MarkScore(CLASS_NAMES[c], int((ref == c).sum()), int((pred == c).sum()),
                               int(((ref == c) & (pred == c)).sum())))
    micro = MarkScore("all", int((ref != NONE).sum()), int((pred != NONE).sum()),
                      int(((ref == pred) & (ref != NONE)).sum()))
    return tuple(marks), micro


def oxford_counts(keys: Sequence[str], labels: Sequence[int]) -> tuple[int, int]:
    """(with, without) serial comma in lists of three or more short items: "A, B, and C" vs
    "A, B and C". Items are at most three words, so a comma after an opening phrase rarely counts."""
    with_, without = 0, 0
    for j in range(3, len(keys)):
        if keys[j] not in _LIST_CONJUNCTIONS:
            continue
        before = labels[j - 1]
        window = labels[max(0, j - 4):j - 1]
        if COMMA not in window:
            continue
        last_comma = max(i for i in range(max(0, j - 4), j - 1) if labels[i] == COMMA)
        if any(labels[i] != NONE for i in range(last_comma + 1, j - 1)):
            continue
        # The item before the last comma must itself follow a comma: at least three items.
        earlier = labels[max(0, last_comma - 4):last_comma]
        if COMMA not in earlier:
            continue
        if before == COMMA:
            with_ += 1
        elif before == NONE:
            without += 1
    return with_, without


def style_figures(parsed: Sequence[Parsed], labels: Sequence[Sequence[int]] | None = None) -> Style:
    """Style of paragraphs (their own marks, or `labels` predicted for their words)."""
    words = 0
    counts = np.zeros(N_CLASSES, dtype=np.int64)
    sentences = 0
    with_, without = 0, 0
    for n, p in enumerate(parsed):
        labs = list(labels[n]) if labels is not None else p.labels
        if not labs:
            continue
        words += len(labs)
        counts += np.bincount(np.asarray(labs, dtype=np.int64), minlength=N_CLASSES)
        stops = sum(1 for lab in labs if lab in _SENTENCE_STOPS)
        sentences += stops + (0 if labs[-1] in _SENTENCE_STOPS else 1)
        w, wo = oxford_counts(p.keys, labs)
        with_ += w
        without += wo
    per_1000 = {CLASS_NAMES[c]: round(1000.0 * counts[c] / words, 2) if words else 0.0 for c in MARK_CLASSES}
    lists = with_ + without
    return Style(words=words, marks_per_1000=per_1000, oxford_rate=(with_ / lists) if lists else None,
                 lists=lists, mean_sentence_words=round(words / sentences, 2) if sentences else 0.0)


def evaluate(model: PunctuationModel, paragraphs: Sequence[str]) -> Report:
    """Strip the marks from `paragraphs`, let the model put them back, and compare."""
    parsed = [p for p in (parse(t) for t in paragraphs) if p.words]
    if not parsed:
        raise PunctuationError("no words to evaluate on")
    keys = [k for p in parsed for k in p.keys]
    lengths = [len(p.keys) for p in parsed]
    reference = [lab for p in parsed for lab in p.labels]
    pred = model.predict(keys, lengths).labels
    marks, micro = score(reference, pred)
    pred_split, at = [], 0
    for n in lengths:
        pred_split.append(pred[at:at + n].tolist())
        at += n
    return Report(marks=marks, micro=micro, reference=style_figures(parsed), predicted=style_figures(parsed, pred_split))


def format_report(report: Report) -> str:
    """The table `dictate punctuation eval` prints."""
    lines = [f"{'mark':<12}{'ref':>7}{'pred':>7}{'prec':>8}{'recall':>8}{'F1':>7}"]
    for m in (*report.marks, report.micro):
        lines.append(f"{m.name:<12}{m.support:>7}{m.predicted:>7}{m.precision:>8.3f}{m.recall:>8.3f}{m.f1:>7.3f}")
    ref, pred = report.reference, report.predicted
    lines.append("")
    lines.append(f"{'style':<24}{'reference':>11}{'predicted':>11}")
    for name in ref.marks_per_1000:
        lines.append(f"{name + ' per 1000 words':<24}{ref.marks_per_1000[name]:>11.1f}{pred.marks_per_1000[name]:>11.1f}")

    def rate(s: Style) -> str:
        return "n/a" if s.oxford_rate is None else f"{s.oxford_rate:.2f} ({s.lists})"

    lines.append(f"{'Oxford-comma rate':<24}{rate(ref):>11}{rate(pred):>11}")
    lines.append(f"{'mean sentence words':<24}{ref.mean_sentence_words:>11.1f}{pred.mean_sentence_words:>11.1f}")
    lines.append(f"{'words':<24}{ref.words:>11}{pred.words:>11}")
    return "\n".join(lines) + "\n"
