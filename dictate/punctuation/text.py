"""Words and the mark after each: parsing punctuated text into (word, mark, case) and rendering back.

A paragraph becomes a list of words, each followed by one of nine marks (none, comma, period,
question, exclamation, colon, semicolon, dash, ellipsis). Quotes and brackets stay attached to
their words; only the nine marks are stripped and predicted, so re-punctuated text always has
the same words in the same order."""

from __future__ import annotations

import re
from dataclasses import dataclass

NONE, COMMA, PERIOD, QUESTION, EXCLAMATION, COLON, SEMICOLON, DASH, ELLIPSIS = range(9)
CLASS_NAMES = ("none", "comma", "period", "question", "exclamation", "colon", "semicolon", "dash", "ellipsis")
N_CLASSES = len(CLASS_NAMES)
MARK_CLASSES = tuple(range(1, N_CLASSES))  # every class but none
SENTENCE_END = (PERIOD, QUESTION, EXCLAMATION, ELLIPSIS)
# How each mark is written when a model knows no better (models store the author's own forms).
DEFAULT_FORMS = ("", ",", ".", "?", "!", ":", ";", "—", "...")

LOWER, CAPITAL, UPPER, MIXED, NOALPHA = range(5)

_OPENERS = "\"'“‘([{«„‚¿¡"
_CLOSERS = "\"'”’)]}»"
_MARK_CHARS = ".,;:?!…—–-"
_CHUNK = re.compile(
    rf"^(?P<lead>[{re.escape(_OPENERS)}]*)(?P<core>.*?)(?P<trail>[{re.escape(_CLOSERS + _MARK_CHARS)}]*)$", re.S
)
_DASH_SPLIT = re.compile(r"—|–|--+")
_DIGIT = re.compile(r"\d")
_DOTTED = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")  # U.S, e.g, p.m: a dotted abbreviation, not 3.5
# A period after these belongs to the word, not to the sentence.
ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr vs etc prof inc ltd co ca cf al approx dept esp fig gen gov sgt capt col lt mt".split()
)


@dataclass(frozen=True)
class Parsed:
    """One paragraph: parallel lists, one entry per word."""

    words: list[str]  # as written, marks removed (quotes, brackets, inner dots kept)
    keys: list[str]  # lower-cased core, digits folded to 0: what features see
    labels: list[int]  # the mark after each word
    cases: list[int]  # LOWER/CAPITAL/UPPER/MIXED/NOALPHA of the word as written
    dash_forms: list[str]  # the dashes as written, to learn the author's form
    ellipsis_forms: list[str]


def _label(marks: str) -> int:
    if "…" in marks or "..." in marks:
        return ELLIPSIS
    if "?" in marks:
        return QUESTION
    if "!" in marks:
        return EXCLAMATION
    if "." in marks:
        return PERIOD
    if ";" in marks:
        return SEMICOLON
    if ":" in marks:
        return COLON
    if "—" in marks or "–" in marks or "-" in marks:
        return DASH
    if "," in marks:
        return COMMA
    return NONE


def case_of(core: str) -> int:
    if core.islower():  # the common case first: str methods, no per-character Python loop
        return LOWER
    for i, first in enumerate(core):
        if first.isalpha():
            break
    else:
        return NOALPHA
    rest = core[i + 1:]
    if first.isupper() and (rest.islower() or not any(c.isalpha() for c in rest)):
        return CAPITAL
    if core.isupper():
        return UPPER
    return MIXED


def key_of(core: str) -> str:
    return _DIGIT.sub("0", core.lower().replace("’", "'"))


def parse(paragraph: str) -> Parsed:
    """Split a paragraph into words and the marks between them (see the module doc)."""
    words: list[str] = []
    keys: list[str] = []
    labels: list[int] = []
    cases: list[int] = []
    dash_forms: list[str] = []
    ellipsis_forms: list[str] = []
    chunks = paragraph.split()
    for n, chunk in enumerate(chunks):
        # Most words are letters, perhaps with a comma or period: no pattern needed (a third of
        # training time was spent here).
        if chunk.isalpha():
            words.append(chunk)
            keys.append(chunk.lower())
            labels.append(NONE)
            cases.append(case_of(chunk))
            continue
        last = chunk[-1]
        if (last == "," or last == ".") and chunk[:-1].isalpha() and (
                last == "," or chunk[:-1].lower() not in ABBREVIATIONS):
            core = chunk[:-1]
            words.append(core)
            keys.append(core.lower())
            labels.append(COMMA if last == "," else PERIOD)
            cases.append(case_of(core))
            continue
        if "—" in chunk or "–" in chunk or "--" in chunk:
            pieces = _DASH_SPLIT.split(chunk)
            for i, dash in enumerate(_DASH_SPLIT.findall(chunk)):
                # Spaced (" — ") when the dash stands alone between words, closed ("a—b") otherwise.
                spaced = (chunk == dash) or (i == len(pieces) - 2 and pieces[-1] == "" and n + 1 < len(chunks))
                dash_forms.append(f" {dash} " if spaced else dash)
        else:
            pieces = [chunk]
        for j, piece in enumerate(pieces):
            if j and labels and labels[-1] == NONE:  # a dash separated this piece from the one before
                labels[-1] = DASH
            if not piece:
                continue
            m = _CHUNK.match(piece)
            assert m is not None  # the pattern matches any string
            lead, core, trail = m.group("lead"), m.group("core"), m.group("trail")
            if not core:
                # Only punctuation: a stray mark belongs to the word before.
                if labels and trail:
                    mark = _label(trail)
                    if mark != NONE:
                        labels[-1] = mark
                        if mark == ELLIPSIS:
                            ellipsis_forms.append("…" if "…" in trail else "...")
                        elif mark == DASH:
                            dash_forms.append(f" {trail} ")
                elif lead and not labels:
                    continue
                continue
            if trail.startswith(".") and not trail.startswith("..") and (
                _DOTTED.fullmatch(core) or core.lower() in ABBREVIATIONS
            ):
                core += "."
                trail = trail[1:]
            closers = "".join(c for c in trail if c in _CLOSERS)
            marks = "".join(c for c in trail if c not in _CLOSERS)
            label = _label(marks)
            if label == ELLIPSIS:
                ellipsis_forms.append("…" if "…" in marks else "...")
            words.append(lead + core + closers)
            keys.append(key_of(core))
            labels.append(label)
            cases.append(case_of(core))
    return Parsed(words, keys, labels, cases, dash_forms, ellipsis_forms)


def split_word(word: str) -> tuple[str, str, str]:
    """(lead, core, closers) of a word as `parse` returns it."""
    m = _CHUNK.match(word)
    assert m is not None
    return m.group("lead"), m.group("core"), m.group("trail")


def _upper(c: str) -> str:
    u = c.upper()
    return u if len(u) == 1 else c  # "ß".upper() is "SS": a change of case must never change the letters


def _lower(c: str) -> str:
    lo = c.lower()
    return lo if len(lo) == 1 else c  # "İ".lower() is two code points


def capitalize(core: str) -> str:
    for i, c in enumerate(core):
        if c.isalpha():
            return core[:i] + _upper(c) + core[i + 1:]
    return core


def lower(core: str) -> str:
    return core if core.islower() else "".join(_lower(c) for c in core)


def recase(core: str, form: str) -> str:
    """`core` in the capitals of `form` (the author's usual casing of the same word), letter by
    letter. Only case changes: the characters stay the word's own, so "tolkien's" becomes
    "Tolkien's" even if the author wrote "Tolkien’s"."""
    if len(form) != len(core):
        return core
    out = []
    for c, f in zip(core, form):
        if f.isupper():
            out.append(_upper(c))
        elif f.islower():
            out.append(_lower(c))
        else:
            out.append(c)
    return "".join(out)


def render(words: list[str], labels: list[int], forms: tuple[str, ...] = DEFAULT_FORMS) -> str:
    """Words with their marks, as one line. A dash form with spaces (" — ") stands between words."""
    out: list[str] = []
    last = len(words) - 1
    for i, (word, label) in enumerate(zip(words, labels)):
        out.append(word)
        form = forms[label]
        if label == DASH and i < last:
            out.append(form)  # " — " carries its own spaces, "—" joins the words
        else:
            if not (form == "." and word.endswith(".")):  # "etc." ends a sentence with one period
                out.append(form.strip() if label == DASH else form)
            out.append(" ")
    return "".join(out).rstrip()


def strip_marks(paragraph: str) -> str:
    """The paragraph's words, lower-cased, without the nine marks: what a bare transcript looks like."""
    return " ".join(w.lower() for w in parse(paragraph).words)
