"""The personal punctuation model on live dictation, where text is typed as it is committed.

Typed text cannot be taken back safely (the cursor may have moved), so nothing typed is ever
re-punctuated. Each commit's words are punctuated with every word of the dictation so far as
context; the mark after the newest word waits for the next words, which are its right context
and the pause before them (or for the end of the dictation, which ends the sentence). So a
commit types its words at once, and only one mark (with the capital after it) comes a commit late.

    live = LivePunctuator(model, pause_weight=0.3)
    type(live.add(commit.words))   # per commit
    type(live.finish())            # at the end: the last mark
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from dictate.punctuation.model import PunctuationModel, _mid_caps
from dictate.punctuation.text import DASH
from dictate.types import Word

log = logging.getLogger(__name__)


class LivePunctuator:
    def __init__(self, model: PunctuationModel, pause_weight: float = 0.3, source_weight: float = 0.0,
                 hold_words: int = 0) -> None:
        self.model = model
        self.hold_words = hold_words
        self.pause_weight = pause_weight
        self.source_weight = source_weight
        self._words: list[Word] = []
        self._labels: list[int] = []  # decided marks, one per typed word but the newest
        self._cased: list[str] = []  # typed words as typed
        self._open = False  # a word is typed whose mark is not

    def add(self, words: Sequence[Word]) -> str:
        """Text to type for newly committed words: the previous word's mark, these words, and
        the marks between them (not the mark after the last)."""
        self._words.extend(w for w in words if w.text.strip())
        return self._type(final=False)

    def _type(self, final: bool) -> str:
        parsed, pred = self.model.probabilities_for_words(self._words, self.pause_weight,
                                                          source_weight=self.source_weight, final=final)
        n = len(parsed.words)
        typed = len(self._cased)
        until = n if final else n - self.hold_words  # words [typed, until) are typed now
        if until <= typed:
            return ""
        self._labels.extend(int(x) for x in pred.labels[len(self._labels):until - 1])
        out = [self._mark_text(typed - 1)] if self._open else []
        mid_caps = _mid_caps(parsed)
        for i in range(typed, until):
            word = self.model.case_word(parsed, i, self._labels[i - 1] if i else None, mid_caps)
            self._cased.append(word)
            out.append(word)
            if i < until - 1:
                out.append(self._mark_text(i))
        self._open = True
        return "".join(out)

    def finish(self) -> str:
        """The mark after the last word: the dictation is over, so its sentence ends."""
        head = self._type(final=True)  # words still held back
        if not self._open:
            return head
        parsed, pred = self.model.probabilities_for_words(self._words, self.pause_weight,
                                                          source_weight=self.source_weight, final=True)
        label = int(pred.labels[len(parsed.words) - 1])
        self._labels.append(label)
        self._open = False
        form = self.model.forms[label]
        if label == DASH:
            return head + form.strip()
        return head + ("" if form == "." and self._cased[-1].endswith(".") else form)

    def _mark_text(self, i: int) -> str:
        """The mark after word i and what separates it from the next word (" — " carries its spaces)."""
        label = self._labels[i]
        form = self.model.forms[label]
        if label == DASH:
            return form
        return ("" if form == "." and self._cased[i].endswith(".") else form) + " "


_cache: dict[str, tuple[float, PunctuationModel]] = {}


def live_model(model_path: str) -> PunctuationModel:
    """The model at `model_path`, loaded once and again when the file changes (a retrained model)."""
    from dictate.punctuation.model import load_model

    path = Path(model_path).expanduser()
    mtime = path.stat().st_mtime if path.exists() else -1.0
    hit = _cache.get(str(path))
    if hit is not None and hit[0] == mtime:
        return hit[1]
    model = load_model(path)
    _cache[str(path)] = (mtime, model)
    return model
