"""Word error rate with a stated normalisation (jiwer does the alignment).

Normalisation, applied to reference and hypothesis alike: lower case; numbers written as digits
become words ("30" -> "thirty", since Whisper writes digits where the speaker said words); hyphens
and dashes split words; every other punctuation mark is dropped, apostrophes inside words kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import jiwer

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_words(n % 100))
    if n < 1_000_000:
        return number_words(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + number_words(n % 1000))
    return " ".join(_ONES[int(d)] for d in str(n))


def normalize(text: str) -> str:
    text = text.lower().replace("’", "'")
    text = re.sub(r"\d+", lambda m: " " + number_words(int(m.group())) + " ", text)
    text = re.sub(r"[-–—/]", " ", text)
    text = re.sub(r"[^\w' ]+", " ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class Score:
    wer: float
    substitutions: int
    deletions: int
    insertions: int
    reference_words: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    def __str__(self) -> str:
        return (f"WER {100 * self.wer:.1f} % ({self.substitutions} sub, {self.deletions} del, "
                f"{self.insertions} ins of {self.reference_words})")


def score(reference: str, hypothesis: str) -> Score:
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        n = len(hyp.split())
        return Score(float(n > 0), 0, 0, n, 0)
    out = jiwer.process_words(ref, hyp or "")
    return Score(out.wer, out.substitutions, out.deletions, out.insertions, len(ref.split()))


def deleted_words(reference: str, hypothesis: str) -> set[int]:
    """Indexes of the (normalised) reference words that the hypothesis leaves out: what clipping
    costs, as against a misheard word, which is aligned to a substitute."""
    out = jiwer.process_words(normalize(reference), normalize(hypothesis) or "")
    return {i for c in out.alignments[0] if c.type == "delete" for i in range(c.ref_start_idx, c.ref_end_idx)}


def alignment(reference: str, hypothesis: str) -> str:
    """jiwer's printed alignment, for a failure message."""
    out = jiwer.process_words(normalize(reference), normalize(hypothesis) or "")
    return jiwer.visualize_alignment(out, show_measures=False)
