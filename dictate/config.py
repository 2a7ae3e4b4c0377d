"""Configuration: dataclasses with defaults, TOML on disk holding only the keys the user changed,
and platformdirs paths that tests (and portable installs) override through environment variables."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from dictate.errors import ConfigError
from dictate.fsutil import write_atomic

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)

APP_NAME = "dictate"

# Each path can be moved with an environment variable; tests point them all at a temp dir.
_PATH_ENV = {
    "config_dir": "DICTATE_CONFIG_DIR",
    "data_dir": "DICTATE_DATA_DIR",
    "cache_dir": "DICTATE_CACHE_DIR",
    "log_dir": "DICTATE_LOG_DIR",
    "state_dir": "DICTATE_STATE_DIR",
}


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path
    cache_dir: Path
    log_dir: Path
    state_dir: Path  # sockets, lock files, unfinished recordings

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def journal_dir(self) -> Path:
        return self.state_dir / "recordings"

    @property
    def history_db(self) -> Path:
        return self.data_dir / "history.sqlite3"

    @classmethod
    def default(cls) -> "Paths":
        dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False)
        defaults = {
            "config_dir": dirs.user_config_path,
            "data_dir": dirs.user_data_path,
            "cache_dir": dirs.user_cache_path,
            "log_dir": dirs.user_log_path,
            "state_dir": dirs.user_state_path,
        }
        return cls(**{k: Path(os.environ[env]) if os.environ.get(env) else defaults[k] for k, env in _PATH_ENV.items()})


def _opt(default: Any, help: str, **meta: Any) -> Any:
    """A config field whose help text and metadata the settings dialog, docs and validation read:
    `choices` (the only values allowed), `suggestions` (offered, not enforced), `minimum`/`maximum`,
    and `kind` for values with their own editor (model, device, hotkey, dir, file, lines)."""
    factory = (lambda: list(default)) if isinstance(default, list) else None
    metadata = {"help": help, **meta}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class EngineConfig:
    name: str = _opt("faster-whisper", "Engine: faster-whisper, whisper.cpp, remote, or module:attribute",
                     suggestions=["faster-whisper", "whisper.cpp", "remote"])
    fallback: list[str] = _opt([], "Engines tried in order when the first is unreachable, e.g. [\"remote\", \"faster-whisper\"]")
    model: str = _opt("auto", "Model: auto, a stock name (tiny … large-v3-turbo, distil-*), a CTranslate2 directory or a ggml .bin",
                      kind="model")
    device: str = _opt("auto", "auto (CUDA when available), cpu or cuda", choices=["auto", "cpu", "cuda"])
    compute_type: str = _opt("auto", "CTranslate2 compute type: auto, int8, int8_float16, float16, float32",
                             choices=["auto", "int8", "int8_float16", "int8_float32", "int8_bfloat16", "int16",
                                      "float16", "bfloat16", "float32"])
    threads: int = _opt(0, "CPU threads for inference (0: all cores)", minimum=0, maximum=256)
    language: str = _opt("", "Language code such as en; empty to detect",
                         suggestions=["", "en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "ru", "uk", "tr", "ar",
                                      "hi", "zh", "ja", "ko"])
    hotwords: list[str] = _opt([], "Personal vocabulary: names and terms the engine should spell your way", kind="lines")
    live_beam_size: int = _opt(5, "Beam size for live dictation (1 is greedy: faster, but measured much less accurate on short live windows)", minimum=1, maximum=10)


@dataclass
class AudioConfig:
    input_device: str = _opt("", "Input device name or index; empty for the system default", kind="device")
    preroll_s: float = _opt(0.5, "Audio kept from before the hotkey so the first word is not clipped", minimum=0.0)
    ring_capacity_s: float = _opt(120.0, "Capture buffer length; the reader is never this far behind in practice", minimum=5.0)
    open_on_demand: bool = _opt(False, "Open the microphone only while dictating (no pre-roll: the first word may be clipped)")
    trailing_s: float = _opt(0.4, "Audio still taken after push-to-talk is released or dictation is stopped",
                             minimum=0.0, maximum=2.0)


@dataclass
class StreamingConfig:
    min_chunk_s: float = _opt(1.0, "Least new audio before the next live window is sent (more when the engine is slow)", minimum=0.1)
    encoder_pad_s: float = _opt(15.0, "Silence Whisper's encoder hears after a live window; 30 for the full 30 s "
                                "window (slower on a CPU)", minimum=5.0, maximum=30.0)
    trim_at_s: float = _opt(10.0, "Trim the live buffer at a pause after the committed words once it is this long", minimum=5.0, maximum=20.0)
    no_speech_threshold: float = _opt(0.6, "Drop segments more likely silence than this ...", minimum=0.0, maximum=1.0)
    logprob_threshold: float = _opt(-1.0, "... and less confident than this", minimum=-10.0, maximum=0.0)
    compression_ratio_threshold: float = _opt(2.4, "Drop repetitive segments above this compression ratio",
                                              minimum=1.0, maximum=10.0)


@dataclass
class NotesConfig:
    notes_dir: str = _opt("", "Where notes are kept; empty for the user data folder", kind="dir")
    beam_size: int = _opt(5, "Beam size for the record-then-transcribe pass", minimum=1, maximum=10)
    audio_format: str = _opt("flac", "How a note's audio is kept", choices=["flac", "opus"])
    transcribe_while_recording: bool = _opt(True, "Transcribe finished segments while the note is still recording")
    paragraph_pause_s: float = _opt(2.0, "A pause this long starts a new paragraph", minimum=0.5)


@dataclass
class PunctuationConfig:
    enabled: bool = _opt(False, "Re-punctuate notes with your personal punctuation model")
    model_path: str = _opt("", "The active punctuation model (set by `dictate punctuation train`)", kind="file")
    pause_weight: float = _opt(0.3, "How much pauses between words count (0: text only)", minimum=0.0, maximum=2.0)
    apply_live: bool = _opt(False, "Also re-punctuate live dictation: each utterance is typed when you pause, "
                                   "in your punctuation (the words as Whisper heard them)")


@dataclass
class RemoteConfig:
    base_url: str = _opt("http://127.0.0.1:8000/v1", "OpenAI-compatible server, up to and including /v1")
    model: str = _opt("whisper-1", "Model name the server knows")
    connect_timeout_s: float = _opt(5.0, "Connect timeout", minimum=0.1)
    read_timeout_s: float = _opt(120.0, "Read timeout", minimum=1.0)
    max_retries: int = _opt(3, "Retries on 429 and 5xx, with backoff", minimum=0)
    max_upload_mb: float = _opt(24.0, "Split uploads above this size at pauses", minimum=1.0)
    upload_format: str = _opt("flac", "Audio sent to the server (whisper.cpp's server reads wav only)",
                              choices=["flac", "wav"])


@dataclass
class OutputConfig:
    backend: str = _opt("auto", "How text reaches the focused window: auto (chosen for this desktop; see `dictate doctor`), "
                        "xdotool, clipboard (paste), wtype, ydotool, dotool, windows, macos, stdout",
                        choices=["auto", "xdotool", "clipboard", "wtype", "ydotool", "dotool", "windows", "macos",
                                 "stdout"])
    typing_delay_ms: int = _opt(12, "Delay between typed characters (xdotool needs some for non-ASCII)", minimum=0)
    fast_ascii: bool = _opt(True, "xdotool: type plain ASCII without that delay (non-ASCII keeps it)")
    paste_non_ascii: bool = _opt(True, "xdotool: paste text holding non-ASCII characters (accents, CJK, emoji); "
                                       "off: type it at typing_delay_ms, which can lose some")
    paste_long_over: int = _opt(200, "xdotool: text longer than this many characters at once (all that push-to-talk "
                                     "typed when you let go) is pasted, which takes the same time however long it "
                                     "is; 0: always type", minimum=0)
    paste_restore: bool = _opt(True, "After a paste, put back what the clipboard held (every format), unless it changed")
    paste_timeout_s: float = _opt(3.0, "How long a paste waits for the window to take the text", minimum=0.2)
    modifier_wait_s: float = _opt(1.0, "Warn when a modifier is still held after this long (text is never typed "
                                       "while one is down: it waits for the release)", minimum=0.0)
    trailing_space: bool = _opt(True, "Type a space after each dictation, so the next one does not run on")


@dataclass
class HistoryConfig:
    keep_dictation_audio: bool = _opt(False, "Keep each dictation's audio (so it can be transcribed again)")
    recent_dictations: int = _opt(10, "Recent dictations offered in the tray menu", minimum=0, maximum=50)


@dataclass
class DatasetConfig:
    collect_corrections: bool = _opt(False, "Keep corrections as training data: when you edit the text of a dictation, "
                                            "note or file, its audio and your corrected text are saved as a pair for "
                                            "fine-tuning a model on your voice (`dictate dataset`). Stays on this "
                                            "machine. While on, every dictation's audio is kept, so that an edit can "
                                            "make a pair")


@dataclass
class UiConfig:
    sounds: bool = _opt(True, "Play a short cue when dictation starts and stops")
    overlay: str = _opt("bottom", "Where the live text shows while dictating: near the bottom or top edge of the "
                        "screen, next to the mouse pointer, or off",
                        choices=["bottom", "top", "cursor", "off"])


@dataclass
class HotkeyConfig:
    mode: str = _opt("push-to-talk", "push-to-talk or toggle", choices=["push-to-talk", "toggle"])
    dictate: str = _opt("<ctrl>+<alt>+space", "Hotkey for voice typing", kind="hotkey")
    cancel: str = _opt("<ctrl>+<alt>+<shift>+space",
                       "Hotkey that discards the dictation in progress; empty for none", kind="hotkey")
    backend: str = _opt("auto", "Global hotkeys through: auto, x11, portal (Wayland), pynput, or none "
                        "(bind `dictate toggle` in your desktop's shortcut settings instead)",
                        choices=["auto", "x11", "portal", "pynput", "none"])


@dataclass
class Config:
    engine: EngineConfig = field(default_factory=EngineConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    streaming: StreamingConfig = field(default_factory=StreamingConfig)
    notes: NotesConfig = field(default_factory=NotesConfig)
    punctuation: PunctuationConfig = field(default_factory=PunctuationConfig)
    remote: RemoteConfig = field(default_factory=RemoteConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    hotkeys: HotkeyConfig = field(default_factory=HotkeyConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    ui: UiConfig = field(default_factory=UiConfig)
    paths: Paths = field(default_factory=Paths.default, metadata={"persist": False})
    # What `load` found wrong in the file (one line each, naming the key); those keys have their defaults.
    problems: list[str] = field(default_factory=list, compare=False, metadata={"persist": False})

    @property
    def notes_dir(self) -> Path:
        return Path(self.notes.notes_dir).expanduser() if self.notes.notes_dir else self.paths.data_dir / "notes"


def _sections(cfg: Config) -> dict[str, Any]:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.metadata.get("persist", True)}


def _coerce(section: str, key: str, value: Any, default: Any) -> Any:
    """Check a value read from TOML against the default's type (ints are accepted for floats)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, list):
        ok = isinstance(value, list)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(f"config: [{section}] {key} = {value!r} should be a {type(default).__name__}")
    return value


def check(section: str, f: dataclasses.Field, value: Any) -> Any:
    """`value` for field `f` of `[section]`, of the right type and inside its declared choices and
    range; ConfigError naming the key otherwise."""
    default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
    value = _coerce(section, f.name, value, default)
    meta = f.metadata
    shown = repr(value) if isinstance(value, list) else _toml_value(value)
    where = f"config: [{section}] {f.name} = {shown}"
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{where} is not one of {', '.join(map(str, choices))}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in meta and value < meta["minimum"]:
            raise ConfigError(f"{where} is below its minimum {meta['minimum']}")
        if "maximum" in meta and value > meta["maximum"]:
            raise ConfigError(f"{where} is above its maximum {meta['maximum']}")
    if isinstance(value, list) and not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} should be a list of strings")
    return value


def validate(cfg: Config) -> list[str]:
    """Every value that is outside its declared type, choices or range, one line each."""
    problems = []
    for name, section in _sections(cfg).items():
        for f in dataclasses.fields(section):
            try:
                check(name, f, getattr(section, f.name))
            except ConfigError as exc:
                problems.append(str(exc))
    return problems


def load(paths: Paths | None = None) -> Config:
    """Defaults overlaid with the user's config file; unknown keys are warned about and ignored. A
    value of the wrong type or outside its choices or range is reported (a warning naming the key,
    kept in `cfg.problems`) and that key keeps its default."""
    paths = paths or Paths.default()
    cfg = Config(paths=paths)
    try:
        raw = tomllib.loads(paths.config_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return cfg
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config: cannot read {paths.config_file}: {exc}") from exc
    sections = _sections(cfg)
    for name, values in raw.items():
        section = sections.get(name)
        if section is None or not isinstance(values, dict):
            log.warning("config: ignoring unknown section [%s]", name)
            continue
        known = {f.name: f for f in dataclasses.fields(section)}
        for key, value in values.items():
            if key not in known:
                log.warning("config: ignoring unknown key [%s] %s", name, key)
                continue
            try:
                setattr(section, key, check(name, known[key], value))
            except ConfigError as exc:
                problem = f"{exc}; using the default {_toml_value(getattr(section, key))}"
                log.warning("%s", problem)
                cfg.problems.append(problem)
    return cfg


def changed_keys(cfg: Config) -> dict[str, dict[str, Any]]:
    """Only what differs from the defaults, by section."""
    default = Config(paths=cfg.paths)
    out: dict[str, dict[str, Any]] = {}
    for name, section in _sections(cfg).items():
        base = getattr(default, name)
        diff = {f.name: getattr(section, f.name) for f in dataclasses.fields(section)
                if getattr(section, f.name) != getattr(base, f.name)}
        if diff:
            out[name] = diff
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"config: cannot store {value!r}")


def dumps(cfg: Config) -> str:
    lines: list[str] = []
    for name, values in changed_keys(cfg).items():
        lines.append(f"[{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def save(cfg: Config) -> Path:
    """Write the changed keys atomically (a crash leaves the old file, never half a new one).
    A value outside its type, choices or range is refused (ConfigError naming the key)."""
    problems = validate(cfg)
    if problems:
        raise ConfigError(problems[0])
    target = cfg.paths.config_file
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return write_atomic(target, dumps(cfg))
    except OSError as exc:
        raise ConfigError(f"config: cannot write {target}: {exc.strerror or exc}") from None
