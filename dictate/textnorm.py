"""The text normalisation that word error rates are measured after (`dictate eval`, the dataset
export's alignment, the tests), so that a score counts misheard words, not spelling choices.

Applied to reference and hypothesis alike: lower case; curly apostrophes made straight; numbers
written as digits become words ("30" -> "thirty": Whisper writes digits where the speaker said
words); hyphens, dashes and slashes split words; every other punctuation mark is dropped;
apostrophes inside words are kept ("warren's" stays one word, unlike "warrens").
"""

from __future__ import annotations

import re

DESCRIPTION = ("lower case; digits as words (30 -> thirty); hyphens, dashes and slashes split words; "
               "other punctuation dropped; apostrophes inside words kept")

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """English words for a non-negative integer; digit by digit from a million up."""
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
    """See the module docstring; the result is words separated by single spaces."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"\d+", lambda m: " " + number_words(int(m.group())) + " ", text)
    text = re.sub(r"[-–—/]", " ", text)
    text = re.sub(r"[^\w' ]+", " ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    return " ".join(text.split())
