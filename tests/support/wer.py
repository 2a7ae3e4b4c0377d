"""Word error rate with the product's stated normalisation (dictate.textnorm; jiwer does the
alignment)."""

from __future__ import annotations

from dataclasses import dataclass

import jiwer

from dictate.textnorm import normalize


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


def longest_insertion(reference: str, hypothesis: str) -> int:
    """The most hypothesis words in a row that match nothing said: a phrase typed twice, or made up."""
    out = jiwer.process_words(normalize(reference), normalize(hypothesis) or "")
    return max((c.hyp_end_idx - c.hyp_start_idx for c in out.alignments[0] if c.type == "insert"), default=0)
