"""The punctuation model never changes a word: on all three public-domain fixtures, as written and
as a bare transcript, through both the text and the engine-words paths, the words that come out
are the words that went in. Words are compared by an independent rule (not the model's parser):
case-folded, with the punctuation around them stripped, and the apostrophes and hyphens inside
them kept exactly as written ("warren's" is neither "warrens" nor "warren’s")."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dictate.punctuation import PunctuationModel, TrainOptions, strip_marks, train_model
from dictate.punctuation.corpus import read_file
from dictate.types import Word

FIXTURES = Path(__file__).parent / "fixtures" / "punctuation"
FILES = ("bierce_devils_dictionary.txt", "kjv_genesis.txt", "jargon_file.txt")

_BETWEEN = re.compile(r"—|–|--+")  # dashes stand between words, even with no space around them
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")


def words_of(text: str) -> list[str]:
    out = []
    for token in text.split():
        for piece in _BETWEEN.split(token):
            word = _EDGES.sub("", piece.casefold())
            if word:
                out.append(word)
    return out


@pytest.fixture(scope="module")
def fixtures() -> dict[str, list[str]]:
    return {name: read_file(FIXTURES / name) for name in FILES}


@pytest.fixture(scope="module")
def models(fixtures) -> dict[str, PunctuationModel]:
    """Each author's model, trained on the first 80% of their text (two passes: the words must
    survive any model, and the suite's time is short)."""
    return {name: train_model(ps[: int(len(ps) * 0.8)], TrainOptions(epochs=2)) for name, ps in fixtures.items()}


def _assert_same_words(inputs: list[str], outputs: list[str]) -> None:
    assert len(outputs) == len(inputs)
    for before, after in zip(inputs, outputs):
        assert words_of(after) == words_of(before), next(
            (a, b) for a, b in zip(words_of(before) + [""], words_of(after) + [""]) if a != b)


def test_the_comparison_rule_keeps_inner_apostrophes_and_hyphens() -> None:
    assert words_of("“Warren’s” well-known—x-ray, (rock 'n' roll)... U.S. pre- -ish") == [
        "warren’s", "well-known", "x-ray", "rock", "n", "roll", "u.s", "pre", "ish"]
    assert words_of("warren's") != words_of("warrens") and words_of("warren's") != words_of("warren’s")


@pytest.mark.slow
@pytest.mark.parametrize("model_name", FILES)
@pytest.mark.parametrize("text_name", FILES)
def test_words_survive_text_as_written_and_bare(fixtures, models, model_name: str, text_name: str) -> None:
    """Every paragraph of every fixture (held-out and trained-on, the author's own and foreign text)."""
    model = models[model_name]
    written = fixtures[text_name]
    bare = [strip_marks(p) for p in written]
    for source in (written, bare):
        _assert_same_words(source, model.punctuate_text("\n".join(source)).split("\n"))


@pytest.mark.slow
@pytest.mark.parametrize("name", FILES)
def test_words_survive_the_engine_words_path(fixtures, models, name: str) -> None:
    """Live and note text goes through punctuate_words (with pauses): the same rule holds there."""
    model = models[name]
    paragraphs = fixtures[name]
    outputs = []
    for para in paragraphs[int(len(paragraphs) * 0.8):]:
        words, t = [], 0.0
        for i, token in enumerate(strip_marks(para).split()):
            words.append(Word(t, t + 0.25, " " + token, 0.9))
            t += 0.25 + (0.5 if i % 7 == 6 else 0.05)
        outputs.append(model.punctuate_words(words, pause_weight=0.3))
    _assert_same_words(paragraphs[int(len(paragraphs) * 0.8):], outputs)


@pytest.mark.slow
def test_the_authors_apostrophe_never_replaces_the_inputs(models) -> None:
    """The Jargon File writes "Tolkien’s" (curly) and both "Warren’s" and "Warren's": the learnt
    capitals apply, the input's own apostrophe stays."""
    model = models["jargon_file.txt"]
    out = model.punctuate_text("he read tolkien's book at warren's desk and ibm’s manual")
    assert "Tolkien's" in out and "warren's" in out.casefold() and "IBM’s" in out, out
    curly = model.punctuate_text("he read tolkien’s book")
    assert "Tolkien’s" in curly, curly


@pytest.mark.slow
def test_case_changes_never_change_letters(models) -> None:
    """Capitalising a sentence start or lowering an engine's capital must not turn "ß" into "SS"
    or "İ" into two code points."""
    model = models["kjv_genesis.txt"]
    for text in ("ßtraße is a street and İSTANBUL is a city", "and İzmir was far and ßig is not a word"):
        out = model.punctuate_text(text)
        assert words_of(out) == words_of(text), out
        assert len(out.replace(" ", "")) >= len(text.replace(" ", "")), out
