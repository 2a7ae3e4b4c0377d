"""The one-folder bundle: packaging/build-bundle.sh runs PyInstaller on packaging/dictate.spec,
and the bundled binary, run with an empty environment from outside the source tree, prints its
version, answers doctor --json with every engine and the tray's Qt present, and transcribes real
speech with real tiny.en. Its size and build time are printed for the notes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dictate import __version__, desktop
from tests.conftest import REPO
from tests.support.real_models import tiny_en_ct2
from tests.support.wer import score
from tests.test_desktop import desktop_values, exec_argv, needs_dfv, validate_desktop_file

pytestmark = pytest.mark.slow

SENTENCE = ("She opened the window and looked at the garden in the morning light. "
            "The children walked to school along the river every day.")


def folder_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import PyInstaller  # noqa: F401
    except ImportError:
        pytest.fail("PyInstaller is missing: pip install -e '.[test]'", pytrace=False)
    out = tmp_path_factory.mktemp("bundle")
    start = time.perf_counter()
    run = subprocess.run(["bash", str(REPO / "packaging" / "build-bundle.sh"), str(out / "dist"), str(out / "work")],
                         cwd=REPO, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - start
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    folder = out / "dist" / "dictate"
    shutil.rmtree(out / "work", ignore_errors=True)
    sys.stderr.write(f"packaging: bundle built in {seconds:.0f} s, {folder_size(folder) / 2**20:.0f} MB\n")
    return folder


def run_bundled(bundle: Path, tmp_path: Path, *args: str, extra: dict[str, str] | None = None
                ) -> subprocess.CompletedProcess:
    """The bundled binary with a bare environment: no Python of ours on any path."""
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HF_HUB_OFFLINE": "1"}
    for name in ("CONFIG", "DATA", "CACHE", "LOG", "STATE"):
        env[f"DICTATE_{name}_DIR"] = os.environ[f"DICTATE_{name}_DIR"]
    env.update(extra or {})
    return subprocess.run([str(bundle / "dictate"), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)


def test_bundle_holds_the_native_parts(bundle: Path) -> None:
    internal = bundle / "_internal"
    names = {p.name for p in internal.rglob("*")}
    assert any(n.startswith("libctranslate2") for n in names)  # faster-whisper's engine
    assert any(n.startswith("_pywhispercpp") for n in names)  # whisper.cpp
    assert any(n.startswith("libonnxruntime") for n in names)  # the Silero VAD
    assert "libqxcb.so" in names and "libqsvg.so" in names  # Qt's X11 platform and SVG plugins
    assert "libportaudio.so.2" in names
    assert (internal / "dictate" / "resources" / "icons" / "png" / "512" / "dictate.png").is_file()
    assert (internal / "faster_whisper" / "assets").is_dir()


def test_bundled_binary_runs_version_doctor_and_a_transcription(bundle: Path, tmp_path: Path) -> None:
    version = run_bundled(bundle, tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"dictate {__version__}", version.stderr

    doctor = run_bundled(bundle, tmp_path, "doctor", "--json")
    report = json.loads(doctor.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    for name in ("PortAudio", "engine faster-whisper", "engine whisper.cpp", "VAD", "desktop UI"):
        assert checks[name]["ok"], checks[name]
    assert (doctor.returncode == 0) is report["ok"]

    wav = tmp_path / "garden.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), SENTENCE], check=True, timeout=60)
    text = run_bundled(bundle, tmp_path, "transcribe", str(wav), "--model", str(tiny_en_ct2()), "--language", "en")
    assert text.returncode == 0, text.stderr
    assert score(SENTENCE, text.stdout).wer <= 0.2, text.stdout


@needs_dfv
def test_unpacked_bundle_puts_itself_in_the_menu(bundle: Path, tmp_path: Path) -> None:
    """Unpack, run `desktop install --autostart`: the entries start this very binary."""
    dirs = desktop.DesktopDirs(tmp_path / "data", tmp_path / "config")
    run = run_bundled(bundle, tmp_path, "desktop", "install", "--autostart",
                      extra={"XDG_DATA_HOME": str(dirs.data_home), "XDG_CONFIG_HOME": str(dirs.config_home)})
    assert run.returncode == 0, run.stderr
    for entry in (dirs.menu_entry, dirs.autostart_entry):
        validate_desktop_file(entry)
        assert exec_argv(desktop_values(entry.read_text())["Exec"]) == [str((bundle / "dictate").resolve())]
    assert all(p.is_file() for p in dirs.icon_files())


def test_portaudio_hook_prefers_the_system_then_the_bundled_copy(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The runtime hook (run before dictate in the bundle) as sounddevice will call it."""
    import ctypes.util
    import runpy

    hook = REPO / "packaging" / "pyinstaller" / "rth_portaudio.py"
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    system = {"portaudio": "libportaudio.so.2", "c": "libc.so.6"}
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: system.get(name))
    runpy.run_path(str(hook))
    assert ctypes.util.find_library("portaudio") == "libportaudio.so.2"  # the system's first
    del system["portaudio"]
    assert ctypes.util.find_library("portaudio") is None  # none bundled either
    (tmp_path / "libportaudio.so.2").write_bytes(b"")
    assert ctypes.util.find_library("portaudio") == str(tmp_path / "libportaudio.so.2")
    assert ctypes.util.find_library("c") == "libc.so.6" and ctypes.util.find_library("nothing") is None
