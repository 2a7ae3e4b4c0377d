"""`dictate doctor --json` (each check required or optional for what the config enables), the CUDA
libraries it looks for, and faster-whisper falling back to the CPU when CUDA is asked for but does
not work (this machine has no GPU and no CUDA driver: a real broken CUDA), on real tiny.en."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dictate import config
from dictate.audio import files
from dictate.engines import cuda
from tests.conftest import REPO, dictate_env
from tests.support.real_models import tiny_en_ct2
from tests.support.wer import score

SENTENCE = ("She opened the window and looked at the garden in the morning light. "
            "The children walked to school along the river every day.")


def dictate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dictate", *args], cwd=REPO, env=dictate_env(env),
                          capture_output=True, text=True, timeout=180)


def doctor_json(env: dict[str, str] | None = None) -> tuple[dict, int]:
    run = dictate("doctor", "--json", env=env)
    assert run.returncode in (0, 1), run.stderr
    return json.loads(run.stdout), run.returncode


def by_name(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required (packaging/install-system-deps.sh --test)", pytrace=False)
    wav = tmp_path_factory.mktemp("speech") / "garden.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), SENTENCE], check=True,
                   capture_output=True, timeout=60)
    return wav


def set_config(**engine: object) -> None:
    cfg = config.load()
    for key, value in engine.items():
        setattr(cfg.engine, key, value)
    config.save(cfg)


def test_json_marks_each_check_and_the_exit_code_follows_the_required_ones() -> None:
    set_config(model=str(tiny_en_ct2()))
    report, rc = doctor_json({"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert set(report) >= {"version", "ok", "config", "checks"}
    for check in report["checks"]:
        assert set(check) == {"name", "ok", "detail", "fix", "required", "feature"}, check
        assert isinstance(check["ok"], bool) and isinstance(check["required"], bool) and check["feature"]
        if not check["ok"]:
            assert check["fix"] or check["required"], check  # an optional failure always says what to do
    checks = by_name(report)
    # What the default config (faster-whisper, local model) needs ...
    for name in ("engine faster-whisper", "configured model", "VAD", "PortAudio", "desktop UI"):
        assert checks[name]["required"] and checks[name]["ok"], checks[name]
    # ... and what it can do without: the session's microphone, typing and hotkeys, other engines.
    for name in ("microphone", "typing", "hotkeys", "keyring", "engine whisper.cpp", "engine remote", "GPU"):
        assert not checks[name]["required"], checks[name]
    assert not checks["typing"]["ok"]  # no display here: said, with its fix, but optional
    assert "CUDA cuBLAS 12" not in checks  # a CPU-only machine with device = auto needs no CUDA
    assert report["ok"] is (rc == 0) is all(c["ok"] for c in report["checks"] if c["required"])
    assert rc == 0


def test_remote_engine_makes_the_server_and_keyring_required() -> None:
    set_config(name="remote", model="auto")
    checks = by_name(doctor_json()[0])
    assert checks["engine remote"]["required"] and checks["keyring"]["required"]
    assert not checks["engine faster-whisper"]["required"]
    assert not checks["configured model"]["required"]  # the server has the model


def test_cuda_asked_for_says_exactly_what_is_missing() -> None:
    set_config(model=str(tiny_en_ct2()), device="cuda")
    report, rc = doctor_json()
    checks = by_name(report)
    assert checks["GPU"]["required"] and not checks["GPU"]["ok"]
    assert "no CUDA device" in checks["GPU"]["detail"] and "libcuda.so.1" in checks["GPU"]["detail"]
    cublas = checks["CUDA cuBLAS 12"]
    assert cublas["required"] and not cublas["ok"]
    assert cublas["detail"] == "missing libcublasLt.so.12, libcublas.so.12"
    assert cublas["fix"].startswith("pip install nvidia-cublas-cu12")
    cudnn = checks["CUDA cuDNN 9"]
    if cuda.CUDNN in cuda.needed():  # CTranslate2 before 4.7
        assert cudnn["required"] and "nvidia-cudnn-cu12" in cudnn["fix"]
    else:
        assert cudnn["ok"] and "not needed" in cudnn["detail"]
    assert rc == 1 and report["ok"] is False


def test_cuda_libraries_are_found_where_the_loader_would_look(tmp_path: Path) -> None:
    """A real shared library under each cuBLAS name, on LD_LIBRARY_PATH: found and loaded; a file
    that is not a library is found but reported as unloadable."""
    real = Path(next(p for p in ("/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1",
                                 "/lib64/libz.so.1") if Path(p).is_file()))
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    for name in cuda.CUBLAS.sonames:
        shutil.copy(real, good / name)
        (bad / name).write_bytes(b"not a library")
    found = cuda.locate(cuda.CUBLAS, {"LD_LIBRARY_PATH": f"/nonexistent:{good}"})
    assert found.ok and found.paths == tuple(good / n for n in cuda.CUBLAS.sonames) and not found.fix
    broken = cuda.locate(cuda.CUBLAS, {"LD_LIBRARY_PATH": str(bad)})
    assert not broken.ok and not broken.missing and "cannot be loaded" in broken.error
    missing = cuda.locate(cuda.CUBLAS, {"LD_LIBRARY_PATH": ""})
    assert missing.missing == cuda.CUBLAS.sonames and missing.fix == "pip install nvidia-cublas-cu12"


def test_this_ctranslate2_build_names_its_cuda_libraries() -> None:
    binary = cuda.ctranslate2_binary()
    assert binary is not None and binary.is_file()
    data = binary.read_bytes()
    assert b"libcublas.so.12" in data  # what the check looks for is what CTranslate2 loads
    assert (cuda.CUDNN in cuda.needed()) == (b"cudnn" in data.lower())


@pytest.mark.slow
def test_broken_cuda_falls_back_to_cpu_int8_in_one_line(speech_wav: Path, caplog: pytest.LogCaptureFixture) -> None:
    from dictate.engines.faster import FasterWhisperEngine
    from dictate.types import TranscribeOptions

    with caplog.at_level(logging.WARNING):
        engine = FasterWhisperEngine(tiny_en_ct2(), device="cuda")
    assert (engine.device, engine.compute_type) == ("cpu", "int8")
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "CUDA is not usable" in warnings[0].getMessage()
    assert "using the CPU (int8)" in warnings[0].getMessage() and "\n" not in warnings[0].getMessage()
    text = " ".join(s.text for s in engine.transcribe(files.decode(speech_wav), TranscribeOptions(language="en")))
    assert score(SENTENCE, text).wer <= 0.2, text

    # The CLI with device = "cuda" in the config: one line on stderr, no traceback, the words on stdout.
    set_config(device="cuda")
    run = dictate("transcribe", str(speech_wav), "--model", str(tiny_en_ct2()), "--language", "en")
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert "Traceback" not in run.stderr
    assert len([line for line in lines if "CUDA" in line]) == 1, run.stderr
    assert score(SENTENCE, run.stdout).wer <= 0.2, run.stdout
