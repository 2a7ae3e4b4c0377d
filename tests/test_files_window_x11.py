"""The files window as a user meets it: `dictate files` on a real X server (Xvfb), files dragged
from another application (tests/support/drag_source.py starts a QDrag with file URLs; xdotool
presses, moves and releases the mouse onto the window), transcribed with the real tiny.en
weights, and the exported TXT/SRT/VTT/JSON checked (WER against the words spoken).

The screenshot of the window with its queue is saved under the test's tmp dir; with
DICTATE_UPDATE_SCREENSHOTS=1 it is also copied to resources/screenshots/ (the README's)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dictate.storage import History
from tests.conftest import REPO, dictate_env
from tests.support.real_models import tiny_en_ct2
from tests.support.speech import REPORT, build, short
from tests.support.spoken_files import SENTENCES, speak
from tests.support.media import write_audio
from tests.support.wer import score
from tests.support.xserver import wait_for, xserver  # noqa: F401 - fixture

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not shutil.which("Xvfb") or not shutil.which("xdotool"),
                                 reason="needs Xvfb and xdotool (packaging/install-system-deps.sh --test)")]

SCREENSHOTS = REPO / "resources" / "screenshots"
SR = 16_000


def keep_screenshot(path: Path) -> None:
    if os.environ.get("DICTATE_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / path.name)


class Lines:
    """A child's stdout, line by line, read on a thread (the test never blocks on the pipe)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), name="test-child-stdout", daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def find(self, prefix: str) -> str | None:
        return next((l for l in self.lines if l.startswith(prefix)), None)


def cues(srt: str) -> list[tuple[float, float, str]]:
    def t(s: str) -> float:
        h, m, rest = s.split(":")
        sec, ms = rest.replace(".", ",").split(",")
        return int(h) * 3600 + int(m) * 60 + int(sec) + int(ms) / 1000
    found = re.findall(r"(\d\d:\d\d:\d\d[,.]\d{3}) --> (\d\d:\d\d:\d\d[,.]\d{3})\n(.+)", srt)
    return [(t(a), t(b), text) for a, b, text in found]


def test_files_dragged_from_another_app_are_transcribed_and_exported(xserver, tmp_path, isolated_dirs):  # noqa: F811
    x = xserver
    src = tmp_path / "recordings"
    src.mkdir()
    first = speak(SENTENCES[0], tmp_path / "tts")
    second = speak(SENTENCES[1], tmp_path / "tts")
    # Prose, not a sentence said again: Whisper's repetition guard would retry a repeated text.
    lecture = build(short(REPORT["genesis-gb"], 14.0))
    inputs = {  # one stem for two files: each must keep its own outputs
        write_audio(src / "speech.mp3", first, SR): SENTENCES[0],
        write_audio(src / "speech.flac", second, SR): SENTENCES[1],
        write_audio(src / "lecture.ogg", lecture.audio, SR): lecture.text,
    }
    out = tmp_path / "out"
    env = dictate_env({**x.env, "QT_QPA_PLATFORM": "xcb"})
    log = open(tmp_path / "files.err", "w")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny.en").symlink_to(tiny_en_ct2(), target_is_directory=True)
    # Relative paths, as a user in their folder would type them (and as the screenshot shows them).
    window_proc = subprocess.Popen(
        [sys.executable, "-m", "dictate", "-v", "files", "--model", "models/tiny.en", "--language", "en",
         "--format", "txt,srt,vtt,json", "--output-dir", "out"], cwd=tmp_path, env=env, stdout=log, stderr=log)
    source = None
    try:
        wid = wait_for(lambda: x.search("--name", "^Transcribe files"), 30, 0.1, "the files window")[0]
        wait_for(lambda: x.viewable(wid), 10, 0.05, "the files window mapped")
        source = subprocess.Popen([sys.executable, "-m", "tests.support.drag_source", "900", "60",
                                   *map(str, inputs)], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
        said = Lines(source)
        wait_for(lambda: said.find("ready"), 30, 0.05, "the drag source")
        sid = int(said.find("ready").split()[1])
        wait_for(lambda: x.viewable(sid), 10, 0.05, "the drag source mapped")
        time.sleep(0.5)  # both windows drawn and taking input
        sx, sy, sw, sh = x.geometry(sid)
        tx, ty, tw, th = x.geometry(wid)
        start, end = (sx + sw // 2, sy + sh // 2), (tx + tw // 2, ty + th // 2)
        x.xdotool("mousemove", str(start[0]), str(start[1]))
        x.xdotool("mousedown", "1")
        wait_for(lambda: said.find("drag started"), 10, 0.05, "the drag to start")
        for i in range(1, 9):  # XDND follows the pointer: enter, positions over the target, drop
            px = start[0] + (end[0] - start[0]) * i // 8
            py = start[1] + (end[1] - start[1]) * i // 8
            x.xdotool("mousemove", str(px), str(py))
            time.sleep(0.1)
        x.xdotool("mouseup", "1")
        assert wait_for(lambda: said.find("drag done"), 20, 0.05, "the drop") == "drag done CopyAction"

        # The two short files first; the window shows the queue while the lecture goes on.
        wait_for(lambda: all((out / f"speech.{e}.json").exists() for e in ("mp3", "flac")), 120, 0.1, "the outputs")
        time.sleep(0.5)
        shot = x.screenshot(tmp_path / "files-window.png", (tx, ty, tw, th))
        keep_screenshot(shot)
        wait_for(lambda: (out / "lecture.json").exists(), 120, 0.1, "the lecture's outputs")
        names = {"speech.mp3": SENTENCES[0], "speech.flac": SENTENCES[1], "lecture": lecture.text}
        assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.{f}" for n in names for f in
                                                               ("txt", "srt", "vtt", "json"))
        for name, said_text in names.items():
            duration = len(said_text.split()) * 0.6 + 8  # generous: espeak reads ~2.5 words/s, plus pauses
            text = (out / f"{name}.txt").read_text()
            s = score(said_text, text)
            assert s.wer <= 0.2, (name, s, text)
            srt = cues((out / f"{name}.srt").read_text())
            vtt_text = (out / f"{name}.vtt").read_text()
            assert vtt_text.startswith("WEBVTT\n\n")
            assert cues(vtt_text) == srt  # the same cues, in WebVTT's clock
            assert srt and all(0 <= a <= b <= duration for a, b, _ in srt)
            assert all(b1 <= a2 + 0.01 for (_, b1, _), (a2, _, _) in zip(srt, srt[1:]))  # in order
            assert " ".join(c for _, _, c in srt) == text.strip()
            doc = json.loads((out / f"{name}.json").read_text())
            assert doc["engine"] == "faster-whisper" and (tmp_path / doc["model"]).resolve() == tiny_en_ct2().resolve()
            assert doc["text"] == text.strip() and len(doc["segments"]) == len(srt)
        entries = History(isolated_dirs / "data" / "history.sqlite3").list(kind="file")
        assert sorted(e.title for e in entries) == ["lecture.ogg", "speech.flac", "speech.mp3"]
        # Closing the window ends `dictate files`.
        x.close_window(wid)
        assert window_proc.wait(30) == 0
    finally:
        for proc in (source, window_proc):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        log.close()
        print((tmp_path / "files.err").read_text()[-3000:])
