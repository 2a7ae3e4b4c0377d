"""The distribution as a user gets it: `python -m build` makes the sdist and the wheel, the wheel
goes into a fresh venv outside the source tree, and the installed `dictate` runs there:
--version, doctor --json, a transcription with real tiny.en, the desktop entries, and the tray
app under Xvfb with its icon read from the wheel through importlib.resources.

The venv is made without pip and without system site-packages; a .pth file puts this
environment's site-packages on its path, so the dependencies (hundreds of MB) are not downloaded
again, while the editable install's import hook there (a .pth it runs) is not loaded: nothing
of the source tree can leak in. Requires-Dist is checked against what the venv then sees.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from dictate import __version__, desktop, ipc
from dictate.config import Paths
from tests.conftest import REPO
from tests.support.pulse import virtual_mic  # noqa: F401 - fixture
from tests.support.real_models import tiny_en_ct2
from tests.support.wer import score
from tests.support.xserver import XServer, wait_for, xserver, xserver_with_tray  # noqa: F401 - fixtures
from tests.test_desktop import exec_argv, desktop_values, needs_dfv, validate_desktop_file

pytestmark = pytest.mark.slow

SENTENCE = ("She opened the window and looked at the garden in the morning light. "
            "The children walked to school along the river every day.")
# How long the module's shared steps took (printed by the last test, for the CI budget).
TIMES: dict[str, float] = {}


@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path


@dataclass(frozen=True)
class Venv:
    root: Path
    work: Path  # a folder outside the source tree to run in

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    @property
    def dictate(self) -> Path:
        return self.root / "bin" / "dictate"

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env.update(extra or {})
        return env

    def run(self, *argv: str, env: dict[str, str] | None = None, timeout: float = 180,
            ) -> subprocess.CompletedProcess:
        return subprocess.run([str(a) for a in argv], cwd=self.work, env=self.env(env), capture_output=True,
                              text=True, timeout=timeout)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    out = tmp_path_factory.mktemp("dist")
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(REPO)], capture_output=True,
                         text=True, timeout=600)
    TIMES["python -m build (sdist, then the wheel from it)"] = time.perf_counter() - start
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # setuptools' warnings about our own packaging files fail the test; its deprecations of its
    # own (a newer release on a fresh machine) are printed only.
    output = run.stdout + run.stderr
    if "!!" in output:
        print("setuptools warned:\n" + output[-3000:])
        ours = [line for line in output.splitlines() if re.search(r"pyproject\.toml|setup\.py|MANIFEST\.in", line)
                and re.search(r"(?i)warn|deprecat", line)]
        assert not ours, "setuptools warned about our packaging files:\n" + "\n".join(ours)
    wheels, sdists = list(out.glob("*.whl")), list(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(out.iterdir())
    return Dist(wheels[0], sdists[0])


@pytest.fixture(scope="module")
def venv(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    base = tmp_path_factory.mktemp("installed")
    assert not base.resolve().is_relative_to(REPO.resolve())
    root, work = base / "venv", base / "work"
    work.mkdir()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120)
    purelib = subprocess.run([str(root / "bin" / "python"), "-c",
                              "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = site.getsitepackages() + ([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])
    Path(purelib, "_dependencies.pth").write_text("\n".join(p for p in deps if Path(p).is_dir()) + "\n")
    run = subprocess.run([sys.executable, "-m", "pip", "--python", str(root / "bin" / "python"), "install",
                          "--no-deps", "--no-index", "--no-cache-dir", "-q", str(dist.wheel)],
                         capture_output=True, text=True, timeout=300)
    TIMES["fresh venv + pip install of the wheel"] = time.perf_counter() - start
    assert run.returncode == 0, run.stderr
    return Venv(root, work)


def test_wheel_and_sdist_carry_what_they_must(dist: Dist) -> None:
    names = set(zipfile.ZipFile(dist.wheel).namelist())
    for svg in (REPO / "resources" / "icons").glob("*.svg"):
        assert f"dictate/resources/icons/{svg.name}" in names
        for size in desktop.ICON_SIZES:
            assert f"dictate/resources/icons/png/{size}/{svg.stem}.png" in names
    for wav in (REPO / "resources" / "sounds").glob("*.wav"):
        assert f"dictate/resources/sounds/{wav.name}" in names
    assert "dictate/py.typed" in names and "dictate/ui/tray.py" in names and "dictate/desktop.py" in names
    assert not any(n.startswith(("tests/", "resources/", "packaging/")) or "screenshots" in n for n in names), \
        sorted(n for n in names if not n.startswith("dictate"))
    entry_points = zipfile.ZipFile(dist.wheel).read(f"dictate-{__version__}.dist-info/entry_points.txt").decode()
    assert "dictate = dictate.cli:main" in entry_points

    # The sdist rebuilds all of that and holds what a distribution packager and the tests need.
    members = {m.split("/", 1)[1] for m in tarfile.open(dist.sdist).getnames() if "/" in m}
    for path in ("setup.py", "pyproject.toml", "README.md", "resources/icons/png/512/dictate.png",
                 f"packaging/linux/{desktop.MENU_FILE}", f"packaging/linux/{desktop.AUTOSTART_FILE}",
                 f"packaging/linux/{desktop.APP_ID}.metainfo.xml", "packaging/install-system-deps.sh",
                 "tests/conftest.py", "tests/support/real_models.py"):
        assert path in members, path
    assert not any("__pycache__" in m or m.startswith(("tests/.models", "tests/.fixtures")) for m in members)


def test_installed_dictate_runs_outside_the_source_tree(venv: Venv, tmp_path: Path) -> None:
    version = venv.run(venv.dictate, "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"dictate {__version__}", version.stderr

    # The code, its metadata and the icons all come from the venv, and every requirement is met.
    probe = venv.run(venv.python, "-c", (
        "import json, dictate, importlib.metadata as md\n"
        "from importlib import resources\n"
        "from packaging.requirements import Requirement\n"
        "dist = md.distribution('dictate')\n"
        "unmet = []\n"
        "for text in dist.requires or []:\n"
        "    r = Requirement(text)\n"
        "    if r.marker and not r.marker.evaluate({'extra': ''}):\n"
        "        continue\n"
        "    try:\n"
        "        if not r.specifier.contains(md.version(r.name), prereleases=True): unmet.append(text)\n"
        "    except md.PackageNotFoundError:\n"
        "        unmet.append(text)\n"
        "print(json.dumps({'module': dictate.__file__, 'dist': str(dist.locate_file('')),\n"
        "    'icon': str(resources.files('dictate.resources') / 'icons' / 'idle.svg'), 'unmet': unmet}))\n"))
    assert probe.returncode == 0, probe.stderr
    where = json.loads(probe.stdout)
    for key in ("module", "dist", "icon"):
        assert Path(where[key]).resolve().is_relative_to(venv.root.resolve()), where
    assert where["unmet"] == []

    # doctor --json: one object; the exit status is its verdict on the required checks.
    doctor = venv.run(venv.dictate, "doctor", "--json", env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    report = json.loads(doctor.stdout)
    assert report["version"] == __version__ and report["checks"]
    assert (doctor.returncode == 0) is report["ok"], doctor.stdout
    assert {"desktop UI", "VAD", "engine faster-whisper"} <= {c["name"] for c in report["checks"] if c["ok"]}

    # A transcription with real tiny.en weights.
    wav = tmp_path / "garden.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), SENTENCE], check=True, timeout=60)
    text = venv.run(venv.dictate, "transcribe", wav, "--model", tiny_en_ct2(), "--language", "en")
    assert text.returncode == 0, text.stderr
    assert score(SENTENCE, text.stdout).wer <= 0.2, text.stdout


@needs_dfv
def test_installed_dictate_puts_itself_in_the_menu(venv: Venv, tmp_path: Path) -> None:
    dirs = desktop.DesktopDirs(tmp_path / "data", tmp_path / "config")
    env = {"XDG_DATA_HOME": str(dirs.data_home), "XDG_CONFIG_HOME": str(dirs.config_home)}
    run = venv.run(venv.dictate, "desktop", "install", "--autostart", env=env)
    assert run.returncode == 0, run.stderr
    for entry in (dirs.menu_entry, dirs.autostart_entry):
        validate_desktop_file(entry)
        # Exec names the venv's dictate, so the menu works without the venv on PATH.
        assert exec_argv(desktop_values(entry.read_text())["Exec"]) == [str(venv.dictate)]
    assert all(p.is_file() for p in dirs.icon_files())


def test_installed_tray_app_starts_under_xvfb_with_its_icon(venv: Venv, xserver_with_tray: XServer,
                                                             virtual_mic, tmp_path: Path) -> None:  # noqa: F811
    x = xserver_with_tray
    cfg = Paths.default().config_file
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text('[output]\nbackend = "stdout"\n[ui]\nsounds = false\n')
    # The real xcb plugin: the Qt unit tests leave QT_QPA_PLATFORM=offscreen in os.environ, which
    # venv.env() would otherwise carry into the app (and offscreen has no tray).
    env = {**x.env, **virtual_mic.env, "QT_QPA_PLATFORM": "xcb"}
    err = (tmp_path / "app.err").open("w")
    proc = subprocess.Popen([str(venv.dictate), "-v", "--model", str(tiny_en_ct2()), "--language", "en"],
                            cwd=venv.work, env=venv.env(env), stdout=subprocess.DEVNULL, stderr=err)
    log = lambda: (tmp_path / "app.err").read_text(errors="replace")  # noqa: E731
    try:
        def icon():
            assert proc.poll() is None, f"the app exited ({proc.returncode}):\n{log()}"
            for panel in x.search("--name", "^panel$"):
                for wid, name in x.children(panel):
                    if name == "dictate" and x.viewable(wid):
                        return wid
            return None
        try:
            wid = wait_for(icon, 60, 0.05, "the tray icon")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the app's log:\n{log()[-3000:]}") from None

        def status():
            assert proc.poll() is None, f"the app exited ({proc.returncode}):\n{log()}"
            try:
                return ipc.request(Paths.default(), {"command": "status"}, timeout_s=5.0).get("state") == "idle"
            except ipc.NotRunning:
                return False
        wait_for(status, 60, 0.1, f"the model loaded (log:\n{log()[-3000:]})")
        assert "ui: tray icon shown" in log()

        # The icon is drawn: the embedded window shows many colours (an anti-aliased SVG), not
        # one flat panel colour. The app read it from the wheel (there is nothing else here).
        left, top, w, h = x.geometry(wid)
        shot = x.screenshot(tmp_path / "icon.png", (left, top, w, h))
        colours = subprocess.run([sys.executable, "-c", (
            "import sys\n"
            "from PySide6.QtGui import QGuiApplication, QImage\n"
            "app = QGuiApplication(['count'])\n"
            "img = QImage(sys.argv[1])\n"
            "print(len({img.pixel(i, j) for i in range(img.width()) for j in range(img.height())}))\n"),
            str(shot)], capture_output=True, text=True, timeout=60,
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
        assert colours.returncode == 0, colours.stderr
        assert int(colours.stdout) >= 8, f"the tray icon looks empty ({colours.stdout.strip()} colours)"

        proc.terminate()
        assert proc.wait(30) == 0, log()
        assert "ui: stopped" in log()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err.close()
        for step, seconds in TIMES.items():
            sys.stderr.write(f"packaging: {step}: {seconds:.1f} s\n")


def test_pipx_install_puts_a_working_dictate_on_path(tmp_path: Path) -> None:
    """`pipx install .` from the source tree, as the README says. --system-site-packages lets its
    venv reuse this environment's dependencies instead of downloading them again; dictate itself
    is built and installed into pipx's own venv."""
    home, bin_dir = tmp_path / "pipx", tmp_path / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PIPX_HOME=str(home), PIPX_BIN_DIR=str(bin_dir), PIPX_MAN_DIR=str(tmp_path / "man"),
               PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "pipx", "install", "--system-site-packages", "."], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    sys.stderr.write(f"packaging: pipx install .: {seconds:.1f} s\n")
    found = shutil.which("dictate", path=str(bin_dir))
    assert found, list(bin_dir.iterdir())
    version = subprocess.run(["dictate", "--version"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=60)
    assert version.returncode == 0 and version.stdout.strip() == f"dictate {__version__}", version.stderr
    where = subprocess.run(["dictate", "doctor", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=120)
    assert json.loads(where.stdout)["version"] == __version__, where.stderr
    module = subprocess.run([str(home / "venvs" / "dictate" / "bin" / "python"), "-c",
                             "import dictate; print(dictate.__file__)"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=60)
    assert Path(module.stdout.strip()).resolve().is_relative_to(home.resolve()), module.stdout + module.stderr
