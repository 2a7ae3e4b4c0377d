"""Model resolution: local models as they are, stock names through huggingface_hub's real
download and cache code (against a hub served on loopback), auto choice, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dictate.engines import models
from dictate.engines.models import Hardware, ModelFormat
from dictate.errors import ModelError
from tests.conftest import REPO, dictate_env
from tests.support.fake_hub import FakeHub, repo_from_dir
from tests.support.media import tone, write_audio


def dictate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dictate", *args], cwd=REPO, env=dictate_env(env),
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("hw,name", [
    (Hardware(1, 4, 16), "large-v3-turbo"),
    (Hardware(0, 16, 32), "small"),
    (Hardware(0, 4, 8), "base"),
    (Hardware(0, 2, 24), "tiny"),
    (Hardware(0, 8, 2), "tiny"),
])
def test_auto_model_follows_the_hardware(hw: Hardware, name: str) -> None:
    assert models.auto_model_name(hw) == name


def test_local_models_resolve_as_they_are(ct2_model: Path, ggml_model: Path) -> None:
    assert models.resolve(str(ct2_model), ModelFormat.CT2) == ct2_model
    assert models.resolve(str(ggml_model), ModelFormat.GGML) == ggml_model


def test_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "readme.bin").write_bytes(b"hello world")
    with pytest.raises(ModelError, match="not a ggml Whisper model"):
        models.resolve(str(tmp_path / "readme.bin"), ModelFormat.GGML)
    with pytest.raises(ModelError, match="not a CTranslate2 Whisper directory"):
        models.resolve(str(tmp_path), ModelFormat.CT2)


def test_unknown_stock_name() -> None:
    with pytest.raises(ModelError, match="unknown model 'huge'"):
        models.resolve("huge", ModelFormat.CT2)
    with pytest.raises(ModelError, match="unknown whisper.cpp model 'distil-large-v3'"):
        models.resolve("distil-large-v3", ModelFormat.GGML)


def test_offline_and_not_cached_is_one_clear_line() -> None:
    with pytest.raises(ModelError) as info:
        models.resolve("small", ModelFormat.CT2)
    assert "HF_HUB_OFFLINE" in str(info.value) and "dictate models download small" in str(info.value)
    with pytest.raises(ModelError, match="dictate models download small` first"):
        models.resolve("small", ModelFormat.CT2, allow_download=False)


def test_download_then_use_offline(ct2_model: Path, ggml_model: Path, tmp_path: Path, isolated_dirs: Path) -> None:
    """`dictate models download` fetches through huggingface_hub into its cache; afterwards the
    stock name works with the network gone, for both engines."""
    repos = {
        "Systran/faster-whisper-tiny": repo_from_dir(ct2_model),
        "ggerganov/whisper.cpp": {"ggml-tiny.bin": ggml_model.read_bytes()},
    }
    cache = {"HF_HUB_CACHE": str(tmp_path / "hub-cache")}
    with FakeHub(repos) as hub:
        online = {**cache, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.url}
        for engine in ("faster-whisper", "whisper.cpp"):
            run = dictate("models", "download", "tiny", "--engine", engine, env=online)
            assert run.returncode == 0, run.stderr
            assert Path(run.stdout.strip()).exists()
        assert any("/resolve/" in p and "model.bin" in p for p in hub.requests)
        assert any("ggml-tiny.bin" in p for p in hub.requests)

    offline = {**cache, "HF_HUB_OFFLINE": "1"}
    listing = dictate("models", "list", env=offline)
    assert listing.returncode == 0
    assert any(line.startswith("tiny ") and "downloaded" in line for line in listing.stdout.splitlines())
    assert not any(line.startswith("base ") and "downloaded" in line for line in listing.stdout.splitlines())
    audio = write_audio(tmp_path / "a.wav", tone(440, 2.0, 16_000), 16_000)
    for engine in ("faster-whisper", "whisper.cpp"):
        run = dictate("transcribe", str(audio), "--engine", engine, "--model", "tiny", "--no-vad",
                      "--max-new-tokens", "6", env=offline)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip()
    path = dictate("models", "path", "tiny", "--engine", "whisper.cpp", env=offline)
    assert path.returncode == 0 and path.stdout.strip().endswith("ggml-tiny.bin")


def test_download_failure_keeps_nothing_half_done(tmp_path: Path) -> None:
    with FakeHub({}) as hub:  # a hub that has no such model
        run = dictate("models", "download", "tiny", env={"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.url,
                                                          "HF_HUB_CACHE": str(tmp_path / "c")})
    assert run.returncode == 1
    announce, error = run.stderr.splitlines()
    assert announce.startswith("dictate: downloading model tiny")
    assert "could not be fetched" in error and "Traceback" not in run.stderr
    cache = tmp_path / "c"
    leftovers = [p for p in cache.rglob("*") if p.is_file() and p.suffix != ".lock"] if cache.exists() else []
    assert leftovers == []
