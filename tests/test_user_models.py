"""Your own models: `dictate models add NAME PATH` checks that the model loads and registers it, so
that `--model NAME` resolves to it in every engine and verb; `dictate models convert` makes a
faster-whisper model usable in whisper.cpp, and real tiny.en gives the same text from both."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from dictate import cli
from dictate import config as config_mod
from dictate.audio.files import decode
from dictate.engines import create_engine
from dictate.engines import models as models_mod
from dictate.engines import user_models
from dictate.engines.models import ModelFormat
from dictate.errors import ModelError
from dictate.types import TranscribeOptions
from tests.support import wer
from tests.support.real_models import tiny_en_ct2

GREEDY = TranscribeOptions(language="en", beam_size=1, temperature=0.0)
SENTENCE = ("She opened the window and looked at the garden in the morning light. "
            "The children walked to school along the river every day.")


def test_registry_rules_without_loading(tmp_path, ct2_model, ggml_model):
    m = user_models.register("micro", ct2_model, check=False)
    assert m.format is ModelFormat.CT2 and m.engine == "faster-whisper" and m.path == ct2_model.resolve()
    g = user_models.register("micro-cpp", ggml_model, check=False)
    assert g.format is ModelFormat.GGML and g.engine == "whisper.cpp"
    assert [x.name for x in user_models.list_user_models()] == ["micro", "micro-cpp"]
    assert models_mod.resolve("micro", ModelFormat.CT2) == ct2_model.resolve()
    assert models_mod.resolve("micro-cpp", ModelFormat.GGML) == ggml_model.resolve()
    with pytest.raises(ModelError, match="--engine whisper.cpp"):
        models_mod.resolve("micro-cpp", ModelFormat.CT2)
    for bad, why in (("base", "stock model"), ("auto", "stock model"), ("a/b", "cannot be a model name"),
                     ("micro", "exists already")):
        with pytest.raises(ModelError, match=why):
            user_models.register(bad, ct2_model, check=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\0" * 64)
    for path, why in ((empty, "not a CTranslate2"), (junk, "neither"), (tmp_path / "none", "no such")):
        with pytest.raises(ModelError, match=why):
            user_models.register("x", path, check=False)
    # A registered model whose files went away is said so when it is used.
    moved = tmp_path / "moved"
    shutil.copytree(ct2_model, moved)
    user_models.register("gone", moved, check=False)
    shutil.rmtree(moved)
    with pytest.raises(ModelError, match="is gone"):
        models_mod.resolve("gone", ModelFormat.CT2)
    assert user_models.remove("gone").name == "gone" and user_models.lookup("gone") is None
    with pytest.raises(ModelError, match="no model of yours"):
        user_models.remove("gone")


def test_add_checks_that_the_model_loads(tmp_path, ct2_model, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(ct2_model, broken)
    (broken / "model.bin").write_bytes(b"not a model")
    assert cli.main(["models", "add", "broken", str(broken)]) == 1
    assert "faster-whisper cannot load" in capsys.readouterr().err
    assert user_models.lookup("broken") is None
    assert cli.main(["models", "add", "micro", str(ct2_model)]) == 0
    assert cli.main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "your models" in out and "micro" in out and str(ct2_model.resolve()) in out


@pytest.mark.slow
def test_own_model_by_name_and_converted_to_whisper_cpp_gives_the_same_text(tmp_path, capsys):
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required (apt install espeak-ng)", pytrace=False)
    wav = tmp_path / "s.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), SENTENCE], check=True,
                   capture_output=True)
    audio = decode(wav)
    assert cli.main(["models", "add", "my-tiny", str(tiny_en_ct2())]) == 0
    out = tmp_path / "ggml" / "my-tiny.bin"
    assert cli.main(["models", "convert", "my-tiny-ignored", "--to", "ggml", str(out)]) == 1  # not a folder
    assert cli.main(["models", "convert", str(tiny_en_ct2()), "--to", "ggml", str(out), "--add", "my-tiny-cpp"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert user_models.lookup("my-tiny-cpp").format is ModelFormat.GGML
    stamp = out.stat().st_mtime_ns
    assert cli.main(["models", "convert", str(tiny_en_ct2()), "--to", "ggml", str(out)]) == 1  # never overwritten
    assert "--force" in capsys.readouterr().err and out.stat().st_mtime_ns == stamp

    cfg = config_mod.load()
    fw = create_engine("faster-whisper", cfg, model="my-tiny")
    assert Path(fw.model_path) == tiny_en_ct2().resolve()
    text_fw = " ".join(s.text for s in fw.transcribe(audio, GREEDY))
    del fw
    cpp = create_engine("whisper.cpp", cfg, model="my-tiny-cpp")
    text_cpp = " ".join(s.text for s in cpp.transcribe(audio, GREEDY))
    assert wer.score(SENTENCE, text_fw).wer <= 0.1, text_fw
    assert wer.normalize(text_fw) == wer.normalize(text_cpp), (text_fw, text_cpp)
