"""Personal vocabulary from the user's own writing: the names and terms they write often that are
rare in general English, proposed as hotwords (config engine.hotwords), which the engines give
Whisper as a hint (faster-whisper's hotwords, whisper.cpp's and the server's prompt).

"Rare in general English" is measured against Whisper's own English vocabulary: the words its
byte-pair tokenizer (GPT-2's, trained on general web text) has as one whole-word token, 24,593 of
them, shipped as a word list in frequency order. A word that is not one of them, nor an
inflection or a compound of them, is one Whisper has to spell from pieces, and it is exactly those
that it mishears ("Teitelman" as "Tae Delmin") and that a hint helps.

    learned = learn(["~/Documents/notes"])      # Learned(terms=[Term("Teitelman", 12, 5), ...])
    added = add_hotwords(cfg, [t.text for t in learned.terms])
"""

from __future__ import annotations

import gzip
import logging
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Sequence

from dictate.errors import DictateError

log = logging.getLogger(__name__)

MIN_COUNT = 3  # a word written fewer times is a one-off (or a typo), not vocabulary
MIN_PARAGRAPHS = 2  # ... and it must come back in another paragraph
LIMIT = 30  # Whisper's hint holds ~220 tokens; a long list also makes it write listed words not said
_SUFFIXES = ("'s", "’s", "s", "es", "ed", "d", "ing", "ly", "er", "ers", "est", "ness", "ment", "ments",
             "able", "ful", "less", "ish", "ist", "ists", "ism", "ity", "ize", "ized", "izes", "ise", "ised")
_CLITICS = frozenset({"t", "s", "re", "ll", "ve", "d", "m"})
_WORD = re.compile(r"[^\W\d_][\w'’-]*[^\W_]|[^\W\d_]")


class VocabularyError(DictateError):
    """No writing to learn from, or a vocabulary that cannot be kept."""


@dataclass(frozen=True)
class Term:
    text: str  # as the user writes it most often
    count: int  # times written
    paragraphs: int  # in how many paragraphs


@dataclass
class Learned:
    terms: list[Term]
    words: int  # words read
    files: int
    skipped: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def english_words() -> dict[str, int]:
    """Lower-case word -> its rank in Whisper's English vocabulary (0: most frequent)."""
    data = (resources.files("dictate.resources") / "vocabulary" / "whisper_english_words.txt.gz").read_bytes()
    words = gzip.decompress(data).decode("ascii").split()
    return {w: i for i, w in enumerate(words)}


def is_common(word: str, common: dict[str, int] | None = None) -> bool:
    """Whether general English (as Whisper knows it) has this word, or its stem, or its parts."""
    common = english_words() if common is None else common
    w = word.lower().replace("’", "'")
    if w in common or len(w) <= 3:
        return True
    if "'" in w:  # the tokenizer splits "don't" as "don" + "'t", "you're" as "you" + "'re"
        head, _, tail = w.partition("'")
        return tail in _CLITICS and is_common(head, common)
    if "-" in w:
        return all(is_common(part, common) for part in w.split("-") if part)
    for suffix in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            stem = w[: -len(suffix)]
            doubled = len(stem) > 3 and stem[-1] == stem[-2] and stem[:-1] in common  # "planned"
            if stem in common or stem + "e" in common or doubled:
                return True
    # A compound of two common words ("dashboard", "toolchain"), each of three letters or more.
    return any(w[:i] in common and w[i:] in common for i in range(3, len(w) - 2))


def words_of(paragraph: str) -> list[str]:
    """The words of a paragraph as written, without possessive 's (Warren's -> Warren)."""
    out = []
    for m in _WORD.finditer(paragraph):
        w = m.group(0).rstrip("-'’")
        if w.endswith(("'s", "’s")):
            w = w[:-2]
        if w:
            out.append(w)
    return out


def find_terms(paragraphs: Sequence[str], *, min_count: int = MIN_COUNT, min_paragraphs: int = MIN_PARAGRAPHS,
               limit: int = LIMIT) -> list[Term]:
    """The rare words written at least `min_count` times in `min_paragraphs` paragraphs, most
    written first, each in the user's own most frequent spelling."""
    common = english_words()
    forms: dict[str, Counter[str]] = defaultdict(Counter)
    where: dict[str, set[int]] = defaultdict(set)
    verdict: dict[str, bool] = {}
    for n, paragraph in enumerate(paragraphs):
        for word in words_of(paragraph):
            key = word.lower().replace("’", "'")
            rare = verdict.get(key)
            if rare is None:
                rare = verdict[key] = not is_common(key, common)
            if rare:
                forms[key][word] += 1
                where[key].add(n)
    terms = []
    for key, counts in forms.items():
        total = sum(counts.values())
        if total >= min_count and len(where[key]) >= min_paragraphs:
            terms.append(Term(counts.most_common(1)[0][0], total, len(where[key])))
    terms.sort(key=lambda t: (-t.count, -t.paragraphs, t.text.lower()))
    return terms[:limit]


def learn(paths: Sequence[str], **kwargs) -> Learned:
    """Read the writing (text, Markdown, HTML, e-mail; folders walked) and find its terms."""
    from dictate.punctuation.corpus import read_corpus  # the same reader as the punctuation model's

    corpus = read_corpus(paths, prose_only=False)  # names in short lines and list items count too
    if not corpus.paragraphs:
        raise VocabularyError(f"no prose found in {', '.join(str(p) for p in paths)} "
                              "(text, Markdown, HTML and e-mail files are read)")
    return Learned(find_terms(corpus.paragraphs, **kwargs), corpus.words, corpus.files, corpus.skipped)


def merged(existing: Sequence[str], terms: Sequence[str]) -> list[str]:
    """The hotword list with `terms` added after the existing ones (which stay as the user edited
    them), without duplicates whatever their case."""
    out = list(existing)
    seen = {t.lower() for t in out}
    for t in terms:
        if t.lower() not in seen:
            out.append(t)
            seen.add(t.lower())
    return out


def add_hotwords(cfg, terms: Sequence[str]) -> list[str]:
    """Add `terms` to config engine.hotwords and save the config; returns the ones that were new."""
    from dictate import config as config_mod

    before = list(cfg.engine.hotwords)
    cfg.engine.hotwords = merged(before, terms)
    try:
        config_mod.save(cfg)
    except OSError as exc:
        raise VocabularyError(f"cannot save the config: {exc.strerror or exc}") from exc
    return cfg.engine.hotwords[len(before):]
