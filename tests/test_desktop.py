"""Desktop integration: the entries in packaging/linux/ pass the freedesktop validators, and
`dictate desktop install|uninstall [--autostart]` writes (and removes) valid entries and the icon
into temporary XDG folders, twice without harm."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dictate import desktop
from tests.conftest import REPO, dictate_env

LINUX = REPO / "packaging" / "linux"
METAINFO = LINUX / f"{desktop.APP_ID}.metainfo.xml"
ICONS = REPO / "resources" / "icons"

needs_dfv = pytest.mark.skipif(not shutil.which("desktop-file-validate"),
                               reason="needs desktop-file-validate (packaging/install-system-deps.sh --test)")


def validate_desktop_file(path: Path) -> None:
    """desktop-file-validate with nothing to say: no error, no warning, not even a hint."""
    run = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and not run.stdout.strip() and not run.stderr.strip(), run.stdout + run.stderr


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    return struct.unpack(">II", data[16:24])


def desktop_values(text: str, group: str = "Desktop Entry") -> dict[str, str]:
    values: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("["):
            current = line.strip("[]")
        elif "=" in line and current == group:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def exec_argv(value: str) -> list[str]:
    """An Exec value split into arguments as the Desktop Entry spec says: the string escapes first,
    then double quotes, inside which a backslash escapes `"`, `` ` ``, `$` and itself."""
    text = re.sub(r"\\(.)", lambda m: {"s": " ", "n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)),
                  value)
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == " ":
            i += 1
            continue
        arg = ""
        if text[i] == '"':
            i += 1
            while text[i] != '"':
                if text[i] == "\\" and text[i + 1] in '"`$\\':
                    i += 1
                arg += text[i]
                i += 1
            i += 1
        else:
            while i < n and text[i] != " ":
                arg += text[i]
                i += 1
        args.append(arg.replace("%%", "%"))
    return args


# -- the files in packaging/linux -----------------------------------------------------------------

@needs_dfv
@pytest.mark.parametrize("name", [desktop.MENU_FILE, desktop.AUTOSTART_FILE])
def test_packaging_entries_are_valid(name: str) -> None:
    validate_desktop_file(LINUX / name)


def test_packaging_entries_are_what_install_writes() -> None:
    """The distribution copies and the entries the installer makes differ only in the launcher."""
    assert (LINUX / desktop.MENU_FILE).read_text() == desktop.menu_entry(["dictate"])
    assert (LINUX / desktop.AUTOSTART_FILE).read_text() == desktop.autostart_entry(["dictate"])
    autostart = desktop_values(desktop.autostart_entry(["dictate"]))
    assert autostart["Exec"] == "dictate"  # no verb: the tray app
    assert autostart["NoDisplay"] == "true" and autostart["Icon"] == desktop.APP_ID


@pytest.mark.skipif(not shutil.which("appstreamcli"),
                    reason="needs appstreamcli (packaging/install-system-deps.sh --test)")
def test_metainfo_validates_and_shows_the_apps_screenshots() -> None:
    run = subprocess.run(["appstreamcli", "validate", "--no-net", str(METAINFO)], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert not re.search(r"^[EW]: ", run.stdout, re.M), run.stdout

    root = ET.parse(METAINFO).getroot()
    assert root.findtext("id") == desktop.APP_ID
    assert root.findtext("launchable") == desktop.MENU_FILE
    assert (LINUX / root.findtext("launchable")).is_file()
    images = root.findall("screenshots/screenshot/image")
    assert len(images) >= 2
    for image in images:
        # Each URL names one of the app's own screenshots, with its real size.
        shot = REPO / "resources" / "screenshots" / image.text.rsplit("/", 1)[1]
        assert shot.is_file(), image.text
        assert png_size(shot) == (int(image.get("width")), int(image.get("height"))), shot


# -- the icons --------------------------------------------------------------------------------------

def test_every_icon_has_pngs_at_the_hicolor_sizes() -> None:
    svgs = sorted(ICONS.glob("*.svg"))
    assert "dictate.svg" in {p.name for p in svgs}
    for svg in svgs:
        for size in desktop.ICON_SIZES:
            png = ICONS / "png" / str(size) / f"{svg.stem}.png"
            assert png.is_file(), f"{png} missing: QT_QPA_PLATFORM=offscreen python3 packaging/render-icons.py"
            assert png_size(png) == (size, size), png


def test_pngs_are_rendered_from_the_current_svgs(tmp_path: Path) -> None:
    """The committed PNGs match a fresh render of the SVGs (an edited SVG needs render-icons.py)."""
    for svg in ICONS.glob("*.svg"):
        shutil.copy(svg, tmp_path / svg.name)
    script = (
        "import sys, runpy\n"
        "from pathlib import Path\n"
        f"mod = runpy.run_path({str(REPO / 'packaging' / 'render-icons.py')!r})\n"
        "mod['render'](Path(sys.argv[1]), (48,))\n"
        "from PySide6.QtGui import QImage\n"
        "worst = 0.0\n"
        "for fresh in sorted(Path(sys.argv[1], 'png', '48').glob('*.png')):\n"
        "    a, b = QImage(str(fresh)), QImage(str(Path(sys.argv[2], 'png', '48', fresh.name)))\n"
        "    assert not b.isNull() and a.size() == b.size(), fresh.name\n"
        "    diff = sum(abs(a.pixelColor(x, y).value() - b.pixelColor(x, y).value()) +"
        " abs(a.pixelColor(x, y).alpha() - b.pixelColor(x, y).alpha())\n"
        "               for x in range(48) for y in range(48)) / (48 * 48)\n"
        "    print(fresh.name, round(diff, 2))\n"
        "    worst = max(worst, diff)\n"
        "sys.exit(0 if worst < 3 else 1)\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path), str(ICONS)], capture_output=True, text=True,
                         env=env, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(run.stdout.splitlines()) == len(list(ICONS.glob("*.svg")))


# -- dictate desktop install | uninstall ----------------------------------------------------------

def dictate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dictate", *args], cwd=REPO, env=dictate_env(env),
                          capture_output=True, text=True, timeout=120)


def report(run: subprocess.CompletedProcess) -> dict[Path, str]:
    assert run.returncode == 0, run.stderr
    out = {}
    for line in run.stdout.splitlines():
        action, path = line.split(None, 1)
        out[Path(path)] = action
    return out


@needs_dfv
def test_desktop_install_twice_then_uninstall(tmp_path: Path) -> None:
    # A space in the folder names: the Exec and TryExec lines must still name the launcher right.
    data, config = tmp_path / "my data", tmp_path / "my config"
    env = {"XDG_DATA_HOME": str(data), "XDG_CONFIG_HOME": str(config), "HOME": str(tmp_path / "home")}
    dirs = desktop.DesktopDirs(data, config)

    first = report(dictate("desktop", "install", env=env))
    assert dirs.menu_entry in first and first[dirs.menu_entry] == "written"
    assert dirs.autostart_entry not in first and not dirs.autostart_entry.exists()
    for icon in dirs.icon_files():
        assert first[icon] == "written" and icon.is_file()
        if icon.suffix == ".png":
            n = int(icon.parent.parent.name.split("x")[0])
            assert png_size(icon) == (n, n)
    assert (dirs.icon_theme / "scalable" / "apps" / f"{desktop.APP_ID}.svg").read_bytes() == \
        (ICONS / "dictate.svg").read_bytes()
    validate_desktop_file(dirs.menu_entry)

    # The entry starts this same dictate: its Exec, with --version, runs.
    entry = desktop_values(dirs.menu_entry.read_text())
    argv = exec_argv(entry["Exec"])
    assert Path(argv[0]).is_absolute() and os.access(argv[0], os.X_OK), argv
    version = subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=60,
                             env=dictate_env(), cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("dictate "), version.stderr
    toggle = exec_argv(desktop_values(dirs.menu_entry.read_text(), "Desktop Action ToggleDictation")["Exec"])
    assert toggle == [*argv, "toggle"]

    # Again, with autostart: only the autostart entry is new.
    second = report(dictate("desktop", "install", "--autostart", env=env))
    assert second.pop(dirs.autostart_entry) == "written"
    assert set(second.values()) == {"unchanged"}, second
    validate_desktop_file(dirs.autostart_entry)
    auto = desktop_values(dirs.autostart_entry.read_text())
    assert exec_argv(auto["Exec"]) == argv  # the tray app, no verb
    assert set(report(dictate("desktop", "install", "--autostart", env=env)).values()) == {"unchanged"}

    # Stop autostart only, then remove everything; twice is harmless.
    only = report(dictate("desktop", "uninstall", "--autostart", env=env))
    assert only == {dirs.autostart_entry: "removed"}
    assert dirs.menu_entry.is_file()
    removed = report(dictate("desktop", "uninstall", env=env))
    assert removed.pop(dirs.autostart_entry) == "absent"
    assert set(removed.values()) == {"removed"} and len(removed) == 1 + len(dirs.icon_files())
    assert not dirs.menu_entry.exists() and not any(p.exists() for p in dirs.icon_files())
    assert set(report(dictate("desktop", "uninstall", env=env)).values()) == {"absent"}


def test_xdg_dirs_follow_the_spec(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert desktop.DesktopDirs.from_env({"HOME": str(home)}) == \
        desktop.DesktopDirs(home / ".local" / "share", home / ".config")
    # Relative values are invalid and ignored.
    assert desktop.DesktopDirs.from_env({"HOME": str(home), "XDG_DATA_HOME": "rel", "XDG_CONFIG_HOME": ""}) == \
        desktop.DesktopDirs(home / ".local" / "share", home / ".config")
    got = desktop.DesktopDirs.from_env({"HOME": str(home), "XDG_DATA_HOME": "/d", "XDG_CONFIG_HOME": "/c"})
    assert got.menu_entry == Path("/d/applications") / desktop.MENU_FILE
    assert got.autostart_entry == Path("/c/autostart") / desktop.AUTOSTART_FILE


def test_exec_quoting() -> None:
    assert desktop.exec_line(["/usr/bin/dictate", "toggle"]) == "/usr/bin/dictate toggle"
    assert desktop.exec_line(["/a b/dictate"]) == '"/a b/dictate"'
    # `$` and `"` take a backslash inside quotes, and that backslash is escaped again as a string.
    assert desktop.exec_line(['/x$"y/d']) == '"/x\\\\$\\\\"y/d"'
    assert desktop.exec_line(["/100%/d"]) == "/100%%/d"
    for argv in (["/a b/dictate", "note", "start"], ['/x$"y`z\\w/d'], ["/100% sure/d"]):
        assert exec_argv(desktop.exec_line(argv)) == argv
