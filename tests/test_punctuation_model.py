"""The personal punctuation model: it learns an author's habits (synthetic authors with controlled
habits, and real public-domain prose of three authors), fuses pauses, keeps words and proper
nouns, and saves/loads as a versioned .npz with clear errors for bad files."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dictate.punctuation import (
    PunctuationError,
    PunctuationModel,
    evaluate,
    load_model,
    parse,
    strip_marks,
    style_figures,
    train_model,
)
from dictate.punctuation.corpus import read_file
from dictate.punctuation.evaluate import score
from dictate.punctuation.text import CLASS_NAMES, PERIOD, SENTENCE_END
from dictate.types import Word
from tests.support import synthetic_authors

FIXTURES = Path(__file__).parent / "fixtures" / "punctuation"
REAL_AUTHORS = {
    "bierce": "bierce_devils_dictionary.txt",
    "kjv": "kjv_genesis.txt",
    "jargon": "jargon_file.txt",
}


def _split(paragraphs: list[str], train_share: float = 0.8) -> tuple[list[str], list[str]]:
    k = int(len(paragraphs) * train_share)
    return paragraphs[:k], paragraphs[k:]


def _words(text: str) -> list[str]:
    return strip_marks(text).split()


def _style(lines: list[str]):
    return style_figures([parse(line) for line in lines])


# -- synthetic authors: habits, not words ------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic() -> dict[str, tuple[PunctuationModel, list[str]]]:
    out = {}
    for author in synthetic_authors.AUTHORS:
        train, held_out = _split(synthetic_authors.paragraphs(author, 25_000))
        out[author] = (train_model(train), held_out)
    return out


@pytest.mark.parametrize("text_author", ["terse", "flowing"])
def test_each_model_writes_in_its_own_authors_habits(synthetic, text_author: str) -> None:
    """Both models re-punctuate the same bare words; each comes out in its own author's style."""
    _, held_out = synthetic[text_author]
    bare = "\n".join(strip_marks(p) for p in held_out)
    terse = synthetic["terse"][0].punctuate_text(bare).split("\n")
    flowing = synthetic["flowing"][0].punctuate_text(bare).split("\n")
    for out in (terse, flowing):
        assert [_words(line) for line in out] == [_words(p) for p in held_out]  # same words, same order

    t, f = _style(terse), _style(flowing)
    assert t.lists >= 20 and f.lists >= 20
    assert t.oxford_rate >= 0.9 and f.oxford_rate <= 0.1  # always vs never the serial comma
    ref_terse = _style(synthetic["terse"][1])
    assert t.marks_per_1000["dash"] >= 0.7 * ref_terse.marks_per_1000["dash"] > 20
    assert f.marks_per_1000["dash"] == 0.0  # the flowing author never writes a dash
    assert t.mean_sentence_words < 10 < 18 < f.mean_sentence_words  # short vs long sentences


def test_a_model_scores_best_on_its_own_author(synthetic) -> None:
    for author, (model, held_out) in synthetic.items():
        other = "flowing" if author == "terse" else "terse"
        own = evaluate(model, held_out).micro.f1
        foreign = evaluate(synthetic[other][0], held_out).micro.f1
        assert own > 0.7 and own > foreign + 0.2, (author, own, foreign)


# -- real prose: personal vs generic -----------------------------------------------------------

@pytest.fixture(scope="module")
def real_prose() -> dict[str, tuple[list[str], list[str]]]:
    return {name: _split(read_file(FIXTURES / file)) for name, file in REAL_AUTHORS.items()}


@pytest.mark.slow
@pytest.mark.parametrize("author", sorted(REAL_AUTHORS))
def test_personal_model_beats_a_generic_one_on_the_same_authors_held_out_text(real_prose, author: str) -> None:
    """Generic: trained on the same amount of the other two authors' writing."""
    train, held_out = real_prose[author]
    others = [p for name, (tr, _) in real_prose.items() if name != author for p in tr]
    personal = evaluate(train_model(train), held_out)
    generic = evaluate(train_model(others), held_out)
    assert personal.micro.f1 > generic.micro.f1 + 0.03, (personal.micro.f1, generic.micro.f1)

    # Style: the personal model's mark rates are at least about as close to the author's own (Bierce and
    # the Jargon File punctuate at similar rates, so there the generic model is close too).
    ref = personal.reference.marks_per_1000

    def distance(style) -> float:
        return sum(abs(style.marks_per_1000[k] - ref[k]) for k in ref)

    assert distance(personal.predicted) < 1.1 * distance(generic.predicted)


# -- applying: words, capitals, pauses ---------------------------------------------------------

@pytest.fixture(scope="module")
def kjv_model(real_prose) -> PunctuationModel:
    return train_model(real_prose["kjv"][0])


_vocab = st.sampled_from("and god said let there be light the earth was i anna zanzibar NASA iPhone 3.5 it's (so) "
                         "\"quoted\"".split())
_mark = st.sampled_from(["", "", "", ",", ".", "?", "!", ";", ":", " —", "...", "—"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(_vocab, _mark, st.booleans()), max_size=25), min_size=1, max_size=4))
def test_apply_keeps_the_same_words_in_the_same_order(kjv_model: PunctuationModel, paras) -> None:
    lines = [" ".join((w.capitalize() if cap else w) + m for w, m, cap in para) for para in paras]
    out = kjv_model.punctuate_text("\n".join(lines)).split("\n")
    assert len(out) == len(lines)
    assert [_words(line) for line in out] == [_words(line) for line in lines]


def test_capitals_sentence_starts_names_and_proper_nouns(kjv_model: PunctuationModel) -> None:
    out = kjv_model.punctuate_text("and god said let there be light and there was light and i saw zanzibar "
                                   "and the Zanzibar light was good")
    assert out[0] == "A"  # a paragraph starts a sentence
    assert " God " in out  # learnt from the author: always capitalised
    assert re.search(r"\bI\b", out)
    assert "Zanzibar light" in out  # unknown to the model, but capitalised mid-sentence by the engine: kept
    assert out.endswith(".")
    # Every sentence the model ends, it starts the next with a capital.
    for sentence in re.split(r"(?<=[.?!])\s+", out)[1:]:
        assert sentence[0].isupper()


def test_engine_capital_at_its_own_sentence_start_is_lowered_when_the_sentence_runs_on(
        kjv_model: PunctuationModel) -> None:
    """The engine wrote "Then" as a sentence start; if the model joins the sentences it is "then".
    Names the engine capitalised mid-sentence stay capitalised wherever they stand."""
    parsed = parse("The man went to Zanzibar. Then the woman stayed, and Zanzibar was far")
    labels = [0] * len(parsed.words)
    labels[-1] = PERIOD
    assert " ".join(kjv_model._cased(parsed, labels)) == "The man went to Zanzibar then the woman stayed and Zanzibar was far"
    labels[parsed.words.index("Zanzibar.".rstrip("."))] = PERIOD
    assert "Zanzibar Then the" in " ".join(kjv_model._cased(parsed, labels))


def test_final_false_leaves_the_end_open(kjv_model: PunctuationModel) -> None:
    words = [Word(i * 0.3, i * 0.3 + 0.2, f" {w}") for i, w in enumerate("and god said let there be".split())]
    assert kjv_model.punctuate_words(words, 0.0)[-1] in ".?!…"
    assert kjv_model.punctuate_words(words, 0.0, final=False).endswith("be")


def _timed(text: str, pause_after: dict[int, float], word_s: float = 0.25, gap_s: float = 0.05) -> list[Word]:
    words, t = [], 0.0
    for i, w in enumerate(text.split()):
        words.append(Word(t, t + word_s, " " + w, 0.9))
        t += word_s + pause_after.get(i, gap_s)
    return words


def test_long_pause_raises_sentence_end_probability(kjv_model: PunctuationModel) -> None:
    text = "and the man went into the field and the woman stayed in the house and they were glad"
    i = text.split().index("field")
    ends = list(SENTENCE_END)
    base = kjv_model.probabilities_for_words(_timed(text, {}), 0.5)[1].probabilities[i, ends].sum()
    long = kjv_model.probabilities_for_words(_timed(text, {i: 1.2}), 0.5)[1].probabilities[i, ends].sum()
    stronger = kjv_model.probabilities_for_words(_timed(text, {i: 1.2}), 1.5)[1].probabilities[i, ends].sum()
    assert base < long < stronger
    # The cue can flip the decision when it is strong enough.
    assert CLASS_NAMES[kjv_model.probabilities_for_words(_timed(text, {i: 2.0}), 2.0)[1].labels[i]] != "none"


def test_pause_weight_zero_is_the_text_model_alone(kjv_model: PunctuationModel, real_prose) -> None:
    for para in real_prose["kjv"][1][:10]:
        bare = strip_marks(para)
        rng = np.random.default_rng(len(bare))
        pauses = {i: float(p) for i, p in enumerate(rng.exponential(0.4, len(bare.split())))}
        words = _timed(bare, pauses)
        assert kjv_model.punctuate_words(words, pause_weight=0.0) == kjv_model.punctuate_text(bare)


def test_aligned_pauses_improve_accuracy(kjv_model: PunctuationModel, real_prose) -> None:
    """Words aligned with pauses that follow the reference marks (longer at sentence ends, shorter at
    other marks, log-normal jitter): the more weight the pauses get, the more marks come out right."""
    rng = np.random.default_rng(7)
    data = []
    for para in real_prose["kjv"][1]:
        ref = parse(para)
        pauses = {i: (0.6 if lab in SENTENCE_END else 0.25 if lab else 0.04) * float(rng.lognormal(0.0, 0.5))
                  for i, lab in enumerate(ref.labels)}
        data.append((ref.labels, _timed(" ".join(ref.words), pauses)))

    def micro_f1(weight: float) -> float:
        reference = [lab for labels, _ in data for lab in labels]
        predicted = [lab for _, words in data for lab in kjv_model.probabilities_for_words(words, weight)[1].labels]
        return score(reference, predicted)[1].f1

    text_only, default, strong = micro_f1(0.0), micro_f1(0.3), micro_f1(1.0)
    assert text_only + 0.01 < default < strong, (text_only, default, strong)


def test_engine_marks_count_when_asked(kjv_model: PunctuationModel) -> None:
    text = "and the man went into the field. and the woman stayed in the house"
    i = text.split().index("field.")
    words = _timed(text, {})
    assert kjv_model.probabilities_for_words(words, 0.0, source_weight=10.0)[1].labels[i] == PERIOD


def test_real_engine_words_in_re_punctuated_text_out(ct2_model: Path) -> None:
    """faster-whisper on a random-weight model, with word timestamps: whatever words it produces come
    back in the same order, re-punctuated and sentence-ended."""
    from dictate.config import Config, Paths
    from dictate.engines import create_engine
    from dictate.types import TranscribeOptions

    train, _ = _split(synthetic_authors.paragraphs("terse", 8_000))
    model = train_model(train)
    cfg = Config(paths=Paths.default())
    cfg.engine.model = str(ct2_model)
    cfg.engine.threads = 2
    engine = create_engine("faster-whisper", cfg)
    rng = np.random.default_rng(3)
    audio = (0.1 * rng.standard_normal(16_000 * 4)).astype(np.float32)
    segments = engine.transcribe(audio, TranscribeOptions(language="en", temperature=0.0, max_new_tokens=20,
                                                          word_timestamps=True))
    words = [w for s in segments for w in s.words]
    assert words, "the engine produced words with timestamps"
    out = model.punctuate_words(words, pause_weight=0.3)
    assert _words(out) == _words(" ".join(w.text for w in words))
    assert out and out[-1] in ".?!…"


# -- files --------------------------------------------------------------------------------------

def test_save_and_load_round_trip_without_pickle(kjv_model: PunctuationModel, real_prose, tmp_path: Path) -> None:
    path = kjv_model.save(tmp_path / "m.npz")
    assert path.stat().st_size <= 10_000_000
    with np.load(path, allow_pickle=False) as z:  # plain arrays only
        assert str(z["format"]) == "dictate-punctuation" and int(z["version"]) == 1
    loaded = load_model(path)
    text = "\n".join(strip_marks(p) for p in real_prose["kjv"][1][:20])
    assert loaded.punctuate_text(text) == kjv_model.punctuate_text(text)
    assert loaded.meta["words"] == kjv_model.meta["words"] > 10_000


def _rewrite(src: Path, dst: Path, **changes) -> Path:
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del arrays[key]
    np.savez(dst, **arrays)
    return dst


def test_bad_model_files_give_one_line_errors(kjv_model: PunctuationModel, tmp_path: Path) -> None:
    good = kjv_model.save(tmp_path / "good.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "text.npz"
    text.write_text("not a model", encoding="utf-8")
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("weights.npy", b"garbage")
    broken_member = tmp_path / "broken.npz"
    broken_member.write_bytes(buf.getvalue())
    cases = {
        tmp_path / "missing.npz": "not found",
        truncated: "damaged",
        text: "damaged",
        other: "not a punctuation model",
        broken_member: "not a punctuation model",
        _rewrite(good, tmp_path / "newer.npz", version=np.array(99)): "newer dictate",
        _rewrite(good, tmp_path / "older.npz", version=np.array(0)): "older dictate",
        _rewrite(good, tmp_path / "shape.npz", weights=np.zeros((10, 9), np.float16)): "shapes",
        _rewrite(good, tmp_path / "nometa.npz", meta=None): "incomplete",
    }
    for path, message in cases.items():
        with pytest.raises(PunctuationError) as exc:
            load_model(path)
        assert message in str(exc.value), (path.name, str(exc.value))
        assert "\n" not in str(exc.value) and "dictate punctuation train" in str(exc.value)


@pytest.mark.parametrize("paragraphs", [[], ["Just a few words, here."] * 50])
def test_tiny_corpus_says_how_many_words_are_needed(paragraphs: list[str]) -> None:
    with pytest.raises(PunctuationError, match=r"has \d[\d,]* words; at least 5,000 are needed"):
        train_model(paragraphs)
