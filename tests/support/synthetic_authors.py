"""Synthetic authors with controlled punctuation habits, for testing that a personal punctuation
model learns *habits* and not just words: both authors draw from the same vocabulary and the same
clause grammar, so the same words can be punctuated either way.

- "terse": always the Oxford comma, em dashes around asides, one clause per sentence.
- "flowing": never the Oxford comma, commas around asides, three or four clauses per sentence
  joined with commas and semicolons (no dashes at all).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

NAMES = "Anna Ben Clara David Elena Felix Greta Hugo Ines Jonas Karla Leon".split()
NOUNS = ("dog river house garden letter market window bridge kitchen teacher lamp boat station "
         "village orchard ladder basket engine table map chapel tower meadow harbour").split()
ADJECTIVES = "old quiet small bright narrow heavy green early distant wooden cold broken".split()
VERBS = "saw found painted opened visited watched carried cleaned crossed repaired sold followed".split()
PREPS = "near behind beside under beyond across".split()
ITEMS = ("apples pears plums onions carrots bread cheese candles nails rope soap coffee salt "
         "blankets lemons honey").split()
ASIDES = ("which was old", "as usual", "of course", "by the way", "which nobody liked",
          "as it happened", "to our surprise", "which was new")


@dataclass(frozen=True)
class Habits:
    oxford: bool
    dashes: bool
    clauses_per_sentence: tuple[int, int]
    sentences_per_paragraph: tuple[int, int]


AUTHORS = {
    "terse": Habits(oxford=True, dashes=True, clauses_per_sentence=(1, 1), sentences_per_paragraph=(4, 7)),
    "flowing": Habits(oxford=False, dashes=False, clauses_per_sentence=(3, 4), sentences_per_paragraph=(1, 2)),
}


def _np(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return rng.choice(NAMES)
    if rng.random() < 0.5:
        return f"the {rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}"
    return f"the {rng.choice(NOUNS)}"


def _clause(rng: random.Random, h: Habits) -> str:
    kind = rng.random()
    if kind < 0.25:  # a list of three or four items
        items = rng.sample(ITEMS, rng.choice((3, 3, 4)))
        head = ", ".join(items[:-1])
        sep = ", and " if h.oxford else " and "
        return f"{_np(rng)} bought {head}{sep}{items[-1]}"
    if kind < 0.45:  # an aside around the subject
        aside = rng.choice(ASIDES)
        subject = f"the {rng.choice(NOUNS)}"
        mid = f"—{aside}—" if h.dashes else f", {aside}, "
        return f"{subject}{mid}{rng.choice(VERBS)} {_np(rng)}"
    clause = f"{_np(rng)} {rng.choice(VERBS)} {_np(rng)}"
    if rng.random() < 0.5:
        clause += f" {rng.choice(PREPS)} {_np(rng)}"
    return clause


def _sentence(rng: random.Random, h: Habits) -> str:
    n = rng.randint(*h.clauses_per_sentence)
    parts = [_clause(rng, h)]
    for _ in range(n - 1):
        parts.append(("; " if rng.random() < 0.3 else ", ") + _clause(rng, h))
    text = "".join(parts)
    text = text[0].upper() + text[1:]
    return text + "."


def paragraphs(author: str, words: int, seed: int = 0) -> list[str]:
    """About `words` words of `author`'s writing, one paragraph per string."""
    h = AUTHORS[author]
    rng = random.Random(f"{author}:{seed}")
    out: list[str] = []
    total = 0
    while total < words:
        para = " ".join(_sentence(rng, h) for _ in range(rng.randint(*h.sentences_per_paragraph)))
        out.append(para)
        total += len(para.split())
    return out
