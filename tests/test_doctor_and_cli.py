import subprocess
import sys
from pathlib import Path

from dictate import config
from tests.conftest import REPO, dictate_env


def dictate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dictate", *args], cwd=REPO, env=dictate_env(env),
                          capture_output=True, text=True, timeout=120)


def test_doctor_reports_each_part_with_fixes(isolated_dirs: Path) -> None:
    run = dictate("doctor", env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    lines = run.stdout.splitlines()
    names = {"PortAudio", "engine faster-whisper", "engine whisper.cpp", "GPU", "typing", "hotkeys", "keyring",
             "configured model", "VAD"}
    for name in names:
        assert any(name in line for line in lines), name
    assert any(line.startswith("ok") and "engine faster-whisper" in line for line in lines)
    # No model configured or cached here: that is essential, so a fix is shown and the exit code says so.
    assert run.returncode == 1
    assert any("FAIL" in line and "configured model" in line for line in lines)
    assert any(line.strip().startswith("fix: dictate models download") for line in lines)
    # No display: typing cannot work here, which is said (optional: it depends on the session).
    assert any("warn" in line and "typing" in line for line in lines)


def test_doctor_is_happy_with_a_local_model(ct2_model: Path) -> None:
    cfg = config.load()
    cfg.engine.model = str(ct2_model)
    config.save(cfg)
    run = dictate("doctor")
    assert any(line.startswith("ok") and "configured model" in line for line in run.stdout.splitlines())
    assert run.returncode == 0, run.stdout


def test_core_imports_without_qt() -> None:
    """The headless core must work where PySide6 is missing or broken."""
    code = (
        "import sys; sys.modules['PySide6'] = None\n"
        "import importlib, pkgutil, dictate\n"
        "skip = ('dictate.ui', 'dictate.__main__')\n"
        "for m in pkgutil.walk_packages(dictate.__path__, 'dictate.'):\n"
        "    if not m.name.startswith(skip):\n"
        "        importlib.import_module(m.name)\n"
        "from dictate.cli import build_parser; build_parser()\n"
        "print('ok')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=dictate_env(), capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def test_no_verb_explains_what_to_run() -> None:
    """No display: the tray app says so in one line, before Qt (whose xcb plugin would abort)."""
    run = dictate(env={"DISPLAY": "", "WAYLAND_DISPLAY": "", "QT_QPA_PLATFORM": ""})
    assert run.returncode == 1, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("dictate: no desktop session")
    for hint in ("dictate listen", "dictate transcribe FILE", "dictate --help"):
        assert hint in lines[0]


def test_desktop_missing_only_without_a_display() -> None:
    from dictate.ui.app import desktop_missing

    assert desktop_missing({}, "linux") is not None
    assert desktop_missing({"DISPLAY": ":1"}, "linux") is None
    assert desktop_missing({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert desktop_missing({"WAYLAND_DISPLAY": "wayland-0", "QT_QPA_PLATFORM": "xcb"}, "linux") is not None
    assert desktop_missing({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert desktop_missing({}, "win32") is None and desktop_missing({}, "darwin") is None


def test_help_lists_the_verbs() -> None:
    run = dictate("--help")
    assert run.returncode == 0
    for verb in ("transcribe", "models", "doctor"):
        assert verb in run.stdout
