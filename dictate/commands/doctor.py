"""`dictate doctor`: what works on this machine and what does not, one line each with a fix.
It only looks: no network, no downloads, no recording."""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import Callable

from dictate.commands.common import load_config
from dictate.config import Config
from dictate.engines import models


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    essential: bool = False


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check audio, engines, GPU, typing, hotkeys, keyring and models")
    p.set_defaults(func=run)


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return "?"


def check_portaudio(_: Config) -> list[Check]:
    try:
        import sounddevice as sd
    except OSError:
        return [Check("PortAudio", False, "library not found",
                      "install PortAudio (Debian/Ubuntu: apt install libportaudio2; Fedora: portaudio)", True)]
    out = [Check("PortAudio", True, sd.get_portaudio_version()[1])]
    try:
        inputs = [d for d in sd.query_devices() if d["max_input_channels"] > 0]
    except Exception as exc:
        return out + [Check("microphone", False, f"cannot list devices: {exc}", "check your sound server (PipeWire/PulseAudio)")]
    if not inputs:
        return out + [Check("microphone", False, "no input device", "plug in a microphone or enable one in your sound settings")]
    try:
        default = sd.query_devices(kind="input")["name"]
    except Exception:
        default = "none"
    return out + [Check("microphone", True, f"{len(inputs)} input device(s); default: {default}")]


def check_engines(cfg: Config) -> list[Check]:
    out = []
    for label, module, dist in (("faster-whisper", "faster_whisper", "faster-whisper"),
                                ("whisper.cpp", "pywhispercpp.model", "pywhispercpp")):
        try:
            importlib.import_module(module)
            out.append(Check(f"engine {label}", True, f"{dist} {_version(dist)}"))
        except Exception as exc:
            out.append(Check(f"engine {label}", False, f"cannot import: {exc}", f"pip install {dist}"))
    remote_ok = bool(cfg.remote.base_url)
    out.append(Check("engine remote", remote_ok, cfg.remote.base_url or "no base URL",
                     "" if remote_ok else "set [remote] base_url in the config"))
    return out


def check_gpu(_: Config) -> list[Check]:
    hw = models.detect_hardware()
    if hw.cuda_devices:
        return [Check("GPU", True, f"{hw.cuda_devices} CUDA device(s): faster-whisper uses float16 on GPU")]
    return [Check("GPU", True, f"none; CPU int8 on {hw.cpu_cores} cores, {hw.memory_gb:.0f} GB RAM")]


def check_typing(cfg: Config) -> list[Check]:
    """The backend the app would type with here, and why (the same choice create_sink makes)."""
    from dictate.output import choose_backend

    choice = choose_backend(cfg)
    if choice.available:
        return [Check("typing", True, f"{choice.name}: {choice.reason}")]
    tail = choice.reason.rsplit(": ", 1)[-1]
    fix = tail if tail.startswith(("install", "pip", "run")) else "run dictate inside your desktop session"
    return [Check("typing", False, f"{choice.name}: {choice.reason}",
                  fix + "; `dictate listen` prints to the terminal meanwhile")]


def check_hotkeys(cfg: Config) -> list[Check]:
    """The real hotkey backend, whether push-to-talk works here, and the fix. On X11 the chords
    are grabbed and given back at once, so a key another program holds shows up here."""
    from dictate import hotkeys
    from dictate.errors import DictateError

    try:
        bindings = hotkeys.HotkeyBindings(cfg.hotkeys.dictate, cfg.hotkeys.cancel or None)
        dictate_chord, cancel_chord = bindings.chords()
        found = hotkeys.support(backend=cfg.hotkeys.backend)
    except DictateError as exc:
        return [Check("hotkeys", False, str(exc), "fix the [hotkeys] section of the config (or in the settings)")]
    if not found.available:
        detail = found.reason if "push-to-talk" in found.reason else f"{found.reason}; push-to-talk impossible"
        return [Check("hotkeys", False, detail, found.fix)]
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
                          "choose another [hotkeys] dictate/cancel in the settings, or free the key in the other program")]
    return [Check("hotkeys", True, f"{found.backend}: {found.reason}; {chords}; {ptt}")]


def check_keyring(_: Config) -> list[Check]:
    try:
        from dictate import secrets

        secrets._keyring()
        return [Check("keyring", True, secrets.backend_name())]
    except Exception as exc:
        return [Check("keyring", False, str(exc).split(":")[0],
                      "start GNOME Keyring or KWallet (needed only for the remote engine's key)")]


def check_models(cfg: Config) -> list[Check]:
    out = []
    for fmt, label in ((models.ModelFormat.CT2, "faster-whisper"), (models.ModelFormat.GGML, "whisper.cpp")):
        cached = [n for n in models.stock_names(fmt) if models.cached_path(n, fmt)]
        out.append(Check(f"models ({label})", bool(cached), ", ".join(cached) or "none downloaded",
                         "" if cached else f"dictate models download {models.auto_model_name()}"
                                            + (" --engine whisper.cpp" if fmt is models.ModelFormat.GGML else "")))
    fmt = models.ModelFormat.GGML if cfg.engine.name == "whisper.cpp" else models.ModelFormat.CT2
    try:
        path = models.resolve(cfg.engine.model, fmt, allow_download=False)
        out.append(Check("configured model", True, f"{cfg.engine.model} -> {path}", essential=True))
    except Exception as exc:
        out.append(Check("configured model", False, str(exc), "", essential=True))
    return out


def check_vad_and_ui(_: Config) -> list[Check]:
    out = []
    for label, module, fix in (("VAD", "webrtcvad", "pip install webrtcvad-wheels"),
                               ("desktop UI", "PySide6.QtWidgets", "pip install PySide6-Essentials")):
        try:
            importlib.import_module(module)
            out.append(Check(label, True, f"{module} importable"))
        except Exception as exc:
            out.append(Check(label, False, str(exc), fix))
    return out


CHECKS: tuple[Callable[[Config], list[Check]], ...] = (
    check_portaudio, check_engines, check_gpu, check_models, check_typing, check_hotkeys, check_keyring,
    check_vad_and_ui,
)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    results: list[Check] = []
    for check in CHECKS:
        try:
            results.extend(check(cfg))
        except Exception as exc:  # a doctor must not die of the disease it looks for
            results.append(Check(check.__name__.removeprefix("check_"), False, f"check failed: {exc}"))
    for c in results:
        line = f"{'ok  ' if c.ok else 'FAIL'}  {c.name:<24} {c.detail}"
        if not c.ok and c.fix:
            line += f"\n      fix: {c.fix}"
        sys.stdout.write(line + "\n")
    return 1 if any(c.essential and not c.ok for c in results) else 0
