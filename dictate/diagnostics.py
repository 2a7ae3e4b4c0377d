"""What works on this machine and what does not (`dictate doctor`), one check each with a fix.
It only looks: no network, no downloads, no recording.

Each check names the feature it serves and whether it is required for what the config enables
(the configured engine and model, the GPU when device = "cuda", the server and its key when the
remote engine is in use, ...). Optional checks depend on the session or the hardware and have a
way around them (no microphone: files still transcribe; no global hotkeys: bind `dictate toggle`).
The exit status, and an installer or packager, go by the required ones.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import asdict, dataclass
from typing import Callable

from dictate.config import Config
from dictate.engines import cuda, models

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = False
    feature: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def _version(dist: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return "?"


def engines_in_use(cfg: Config) -> list[str]:
    """The engine and its fallbacks, in order, without repeats."""
    return list(dict.fromkeys([cfg.engine.name, *cfg.engine.fallback]))


def check_portaudio(_: Config) -> list[Check]:
    feature = "microphone (dictation, notes, listen)"
    try:
        import sounddevice as sd
    except OSError:
        return [Check("PortAudio", False, "library not found",
                      "install PortAudio (Debian/Ubuntu: apt install libportaudio2; Fedora: portaudio)", True, feature)]
    out = [Check("PortAudio", True, sd.get_portaudio_version()[1], required=True, feature=feature)]
    # No microphone right now is a state of the session (plug one in), not of the install.
    try:
        inputs = [d for d in sd.query_devices() if d["max_input_channels"] > 0]
    except Exception as exc:
        return out + [Check("microphone", False, f"cannot list devices: {exc}",
                            "check your sound server (PipeWire/PulseAudio)", feature=feature)]
    if not inputs:
        return out + [Check("microphone", False, "no input device",
                            "plug in a microphone or enable one in your sound settings", feature=feature)]
    try:
        default = sd.query_devices(kind="input")["name"]
    except Exception:
        default = "none"
    return out + [Check("microphone", True, f"{len(inputs)} input device(s); default: {default}", feature=feature)]


def check_engines(cfg: Config) -> list[Check]:
    used = engines_in_use(cfg)
    out = []
    for label, module, dist in (("faster-whisper", "faster_whisper", "faster-whisper"),
                                ("whisper.cpp", "pywhispercpp.model", "pywhispercpp")):
        feature = f"engine {label}"
        try:
            importlib.import_module(module)
            out.append(Check(f"engine {label}", True, f"{dist} {_version(dist)}", required=label in used,
                             feature=feature))
        except Exception as exc:
            out.append(Check(f"engine {label}", False, f"cannot import: {exc}", f"pip install {dist}",
                             required=label in used, feature=feature))
    remote_ok = bool(cfg.remote.base_url)
    out.append(Check("engine remote", remote_ok, cfg.remote.base_url or "no base URL",
                     "" if remote_ok else "set [remote] base_url in the config", required="remote" in used,
                     feature="engine remote"))
    return out


def check_gpu(cfg: Config) -> list[Check]:
    """The CUDA device and the libraries CTranslate2 loads for it. Required when the config asks
    for device = "cuda"; with "auto" a GPU without its libraries falls back to the CPU."""
    feature = "GPU (faster-whisper on CUDA)"
    required = cfg.engine.device == "cuda" and "faster-whisper" in engines_in_use(cfg)
    hw = models.detect_hardware()
    if cfg.engine.device == "cpu":
        return [Check("GPU", True, f"not used (device = cpu); CPU int8 on {hw.cpu_cores} cores, "
                                   f"{hw.memory_gb:.0f} GB RAM", feature=feature)]
    out = []
    if hw.cuda_devices:
        out.append(Check("GPU", True, f"{hw.cuda_devices} CUDA device(s): faster-whisper uses float16 on GPU",
                         required=required, feature=feature))
    elif cuda.driver_present():
        out.append(Check("GPU", False, f"the NVIDIA driver ({cuda.DRIVER}) is there but reports no CUDA device",
                         "check `nvidia-smi`; a driver for CUDA 12 is needed", required=required, feature=feature))
    else:
        detail = f"no CUDA device (no {cuda.DRIVER}); CPU int8 on {hw.cpu_cores} cores, {hw.memory_gb:.0f} GB RAM"
        out.append(Check("GPU", not required, detail,
                         "install the NVIDIA driver, or set [engine] device = \"auto\"" if required else "",
                         required=required, feature=feature))
    # Only worth saying when a GPU is asked for or present: a CPU-only machine needs no CUDA.
    if not (required or hw.cuda_devices):
        return out
    needed = cuda.needed()
    for library in cuda.LIBRARIES:
        if library not in needed:
            out.append(Check(f"CUDA {library.label}", True,
                             f"not needed by this CTranslate2 ({_version('ctranslate2')})", feature=feature))
            continue
        found = cuda.locate(library)
        if found.ok:
            detail = ", ".join(str(p) for p in found.paths)
        elif found.error:
            detail = found.error
        else:
            detail = f"missing {', '.join(found.missing)}"
        out.append(Check(f"CUDA {library.label}", found.ok, detail,
                         f"{found.fix} (or install it from NVIDIA's CUDA 12 packages)" if found.fix else "",
                         required=required or bool(hw.cuda_devices), feature=feature))
    return out


def check_typing(cfg: Config) -> list[Check]:
    """The backend the app would type with here, and why (the same choice create_sink makes).
    Required when the config names a backend, or (auto) inside a desktop session, where voice
    typing is what the app is for; on a machine without one, `dictate listen` is the way in."""
    import os

    from dictate.output import choose_backend

    feature = "typing into windows"
    desktop = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    required = cfg.output.backend != "stdout" and (cfg.output.backend != "auto" or desktop)
    choice = choose_backend(cfg)
    if choice.available:
        return [Check("typing", True, f"{choice.name}: {choice.reason}", required=required, feature=feature)]
    tail = choice.reason.rsplit(": ", 1)[-1]
    fix = tail if tail.startswith(("install", "pip", "run")) else "run dictate inside your desktop session"
    return [Check("typing", False, f"{choice.name}: {choice.reason}",
                  fix + "; `dictate listen` prints to the terminal meanwhile", required=required, feature=feature)]


def check_hotkeys(cfg: Config) -> list[Check]:
    """The real hotkey backend, whether push-to-talk works here, and the fix. On X11 the chords
    are grabbed and given back at once, so a key another program holds shows up here."""
    from dictate import hotkeys
    from dictate.errors import DictateError

    import os

    feature = "global hotkeys"
    # Required when configured, or when this desktop has a hotkey backend (then the chord must
    # work); a desktop without one (Wayland, no portal) has the desktop's own shortcuts instead.
    desktop = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    required = cfg.hotkeys.backend not in ("auto", "none")
    try:
        bindings = hotkeys.HotkeyBindings(cfg.hotkeys.dictate, cfg.hotkeys.cancel or None)
        dictate_chord, cancel_chord = bindings.chords()
        found = hotkeys.support(backend=cfg.hotkeys.backend)
    except DictateError as exc:
        return [Check("hotkeys", False, str(exc), "fix the [hotkeys] section of the config (or in the settings)",
                      required=True, feature=feature)]
    if not found.available:
        detail = found.reason if "push-to-talk" in found.reason else f"{found.reason}; push-to-talk impossible"
        return [Check("hotkeys", False, detail, found.fix, required=required, feature=feature)]
    required = required or (desktop and cfg.hotkeys.backend != "none")
    chords = f"{dictate_chord} ({cfg.hotkeys.mode})" + (f", cancel {cancel_chord}" if cancel_chord else "")
    ptt = "push-to-talk works" if found.push_to_talk else "push-to-talk impossible here (use toggle)"
    if found.backend == "x11":
        listener = hotkeys.create_listener(cfg, lambda command: None)
        try:
            if listener is not None:
                listener.start()
                listener.stop()
        except hotkeys.HotkeyError as exc:
            return [Check("hotkeys", False, str(exc).removeprefix("hotkeys: "),
                          "choose another [hotkeys] dictate/cancel in the settings, "
                          "or free the key in the other program",
                          required=required, feature=feature)]
    return [Check("hotkeys", True, f"{found.backend}: {found.reason}; {chords}; {ptt}", required=required,
                  feature=feature)]


def check_keyring(cfg: Config) -> list[Check]:
    required = "remote" in engines_in_use(cfg)
    feature = "remote engine's API key"
    try:
        from dictate import secrets

        secrets._keyring()
        return [Check("keyring", True, secrets.backend_name(), required=required, feature=feature)]
    except Exception as exc:
        return [Check("keyring", False, str(exc).split(":")[0],
                      "start GNOME Keyring or KWallet (needed only for the remote engine's key)",
                      required=required, feature=feature)]


def check_models(cfg: Config) -> list[Check]:
    out = []
    for fmt, label in ((models.ModelFormat.CT2, "faster-whisper"), (models.ModelFormat.GGML, "whisper.cpp")):
        cached = [n for n in models.stock_names(fmt) if models.cached_path(n, fmt)]
        out.append(Check(f"models ({label})", bool(cached), ", ".join(cached) or "none downloaded",
                         "" if cached else f"dictate models download {models.auto_model_name()}"
                                            + (" --engine whisper.cpp" if fmt is models.ModelFormat.GGML else ""),
                         feature=f"engine {label}"))
    local = cfg.engine.name in ("faster-whisper", "whisper.cpp")
    fmt = models.ModelFormat.GGML if cfg.engine.name == "whisper.cpp" else models.ModelFormat.CT2
    feature = "transcription (the configured model)"
    try:
        path = models.resolve(cfg.engine.model, fmt, allow_download=False)
        out.append(Check("configured model", True, f"{cfg.engine.model} -> {path}", required=local, feature=feature))
    except Exception as exc:
        out.append(Check("configured model", False, str(exc), "", required=local, feature=feature))
    return out


def check_punctuation(cfg: Config) -> list[Check]:
    if not cfg.punctuation.enabled:
        return []
    from pathlib import Path

    path = Path(cfg.punctuation.model_path).expanduser() if cfg.punctuation.model_path else None
    ok = path is not None and path.exists()
    return [Check("punctuation model", ok, str(path) if path else "enabled, but no model set",
                  "" if ok else "dictate punctuation train FOLDER (or set [punctuation] enabled = false)",
                  required=True, feature="personal punctuation")]


def check_vad_and_ui(_: Config) -> list[Check]:
    out = []
    for label, module, fix, feature in (
            ("VAD", "webrtcvad", "pip install webrtcvad-wheels", "transcription (pauses and speech)"),
            ("desktop UI", "PySide6.QtWidgets", "pip install PySide6-Essentials", "tray app")):
        try:
            importlib.import_module(module)
            out.append(Check(label, True, f"{module} importable", required=True, feature=feature))
        except Exception as exc:
            out.append(Check(label, False, str(exc), fix, required=True, feature=feature))
    return out


CHECKS: tuple[Callable[[Config], list[Check]], ...] = (
    check_portaudio, check_engines, check_gpu, check_models, check_typing, check_hotkeys, check_keyring,
    check_punctuation, check_vad_and_ui,
)


def run_checks(cfg: Config) -> list[Check]:
    results: list[Check] = []
    for check in CHECKS:
        try:
            results.extend(check(cfg))
        except Exception as exc:  # a doctor must not die of the disease it looks for
            log.debug("doctor: %s raised", check.__name__, exc_info=True)
            results.append(Check(check.__name__.removeprefix("check_"), False, f"check failed: {exc}"))
    return results


def healthy(results: list[Check]) -> bool:
    """Every required check passes."""
    return all(c.ok for c in results if c.required)


def report(cfg: Config, results: list[Check]) -> dict:
    """The machine-readable form (`dictate doctor --json`)."""
    from dictate import __version__

    return {
        "version": __version__,
        "ok": healthy(results),
        "config": {"engine": cfg.engine.name, "fallback": list(cfg.engine.fallback), "model": cfg.engine.model,
                   "device": cfg.engine.device, "output": cfg.output.backend, "hotkeys": cfg.hotkeys.backend,
                   "punctuation": cfg.punctuation.enabled},
        "checks": [c.to_json() for c in results],
    }
