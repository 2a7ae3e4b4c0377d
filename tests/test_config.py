from pathlib import Path

import pytest

from dictate import config
from dictate.config import Config, Paths
from dictate.errors import ConfigError


def test_paths_follow_environment_overrides(isolated_dirs: Path) -> None:
    paths = Paths.default()
    assert paths.config_dir == isolated_dirs / "config"
    assert paths.data_dir == isolated_dirs / "data"
    assert paths.config_file == isolated_dirs / "config" / "config.toml"


def test_missing_file_gives_defaults() -> None:
    cfg = config.load()
    assert cfg.engine.name == "faster-whisper"
    assert cfg.engine.model == "auto"
    assert cfg.notes.beam_size == 5


def test_save_writes_only_changed_keys_and_round_trips() -> None:
    cfg = config.load()
    cfg.engine.model = "small.en"
    cfg.engine.hotwords = ["Kubernetes", "Zoë \"quoted\""]
    cfg.streaming.trim_at_s = 18  # an int in a float field is accepted
    cfg.punctuation.enabled = True
    path = config.save(cfg)
    text = path.read_text(encoding="utf-8")
    assert "[engine]" in text and "[punctuation]" in text
    assert "name =" not in text  # unchanged keys are not written
    assert "[audio]" not in text
    again = config.load()
    assert again.engine.model == "small.en"
    assert again.engine.hotwords == ["Kubernetes", "Zoë \"quoted\""]
    assert again.streaming.trim_at_s == 18.0
    assert again.punctuation.enabled is True
    assert config.changed_keys(again) == config.changed_keys(cfg)


def test_unknown_keys_are_ignored_and_kept_out(caplog: pytest.LogCaptureFixture) -> None:
    paths = Paths.default()
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_text('[engine]\nmodel = "base"\nfrobnicate = 1\n[nonsense]\nx = 1\n')
    cfg = config.load()
    assert cfg.engine.model == "base"
    assert "frobnicate" in caplog.text and "nonsense" in caplog.text


def test_a_broken_file_is_a_one_line_config_error() -> None:
    paths = Paths.default()
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_text("[engine\n")
    with pytest.raises(ConfigError) as info:
        config.load()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("body, key", [('[engine]\nthreads = "four"\n', "[engine] threads"),
                                       ('[engine]\nmodel = 3\n', "[engine] model"),
                                       ('[punctuation]\nenabled = "yes"\n', "[punctuation] enabled")])
def test_values_of_the_wrong_type_are_reported_and_get_the_default(body: str, key: str, caplog) -> None:
    paths = Paths.default()
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_text(body)
    cfg = config.load()
    assert config.changed_keys(cfg) == {}
    assert len(cfg.problems) == 1 and key in cfg.problems[0] and "\n" not in cfg.problems[0]
    assert key in caplog.text


def test_notes_dir_defaults_under_data_dir(isolated_dirs: Path) -> None:
    cfg = Config(paths=Paths.default())
    assert cfg.notes_dir == isolated_dirs / "data" / "notes"
    cfg.notes.notes_dir = "/tmp/elsewhere"
    assert cfg.notes_dir == Path("/tmp/elsewhere")
