"""Tray-app figures, on real tiny.en weights under Xvfb with the trayer tray host, the virtual
microphone and a real text box in another process that receives the typing.

1. Launch -> tray icon mapped in the tray, and launch -> model ready (IPC status).
2. Push-to-talk release -> last character typed, for a ~5 s and a ~60 s utterance read by
   espeak-ng (ratio: goal <= 1.3, the wait must not grow with the length of what was said).
   Push-to-talk is the real hotkey (xdotool keydown/keyup of the chord) and, for comparison,
   `dictate start`/`stop` over IPC (no modifier keys held while the text is typed).
3. CPU used by the app while idle with the microphone open, over 10 s (/proc/PID/stat), as % of
   one core (goal: a few percent at most).

Run: python tests/benchmarks/bench_app.py [--repeat N]   (prints figures; asserts nothing)"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from dictate import ipc  # noqa: E402
from dictate.config import Paths  # noqa: E402
from tests.support.pulse import VirtualMic  # noqa: E402
from tests.support.real_models import tiny_en_ct2  # noqa: E402
from tests.support.speech import RECORDINGS, build, short  # noqa: E402
from tests.support.type_target import TypeTarget  # noqa: E402
from tests.support.xserver import XServer, wait_for  # noqa: E402

CHORD = "ctrl+alt+space"  # xdotool's name for the default [hotkeys] dictate <ctrl>+<alt>+space


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def have_hotkeys() -> bool:
    try:
        from dictate.hotkeys import create_listener  # noqa: F401
    except ImportError:
        return False
    return True


def status() -> dict:
    try:
        return ipc.request(Paths.default(), {"command": "status"}, timeout_s=2.0)
    except ipc.NotRunning:
        return {}


def speech(seconds: float):
    """A recording of about `seconds` of read prose, cut right after its last word (the speaker
    lets go of the key as the last word ends)."""
    rec = build(short(RECORDINGS["genesis-gb"], seconds))
    # Sentences come whole: stop at the sentence end nearest the length asked for.
    end_s = min((e for _s, e in rec.spans_s), key=lambda e: abs(e - seconds))
    return rec, rec.audio[:int((end_s + 0.05) * 16_000)]


def utterance(x: XServer, mic: VirtualMic, target: TypeTarget, audio, hotkey: bool) -> dict:
    """Hold, speak, release; the time from release to the last character arriving in the box."""
    before = target.text
    target.focus()
    if hotkey:
        x.xdotool("keydown", CHORD)
    else:
        ipc.request(Paths.default(), {"command": "start"})
    wait_for(lambda: status().get("state") == "listening", 10, 0.02, "listening")
    mic.play(audio).wait(audio.size / 16_000 + 30)
    released = time.monotonic()
    if hotkey:
        x.xdotool("keyup", CHORD)
    else:
        ipc.request(Paths.default(), {"command": "stop"})
    last_change, text = released, target.text
    deadline = released + 120
    while time.monotonic() < deadline:
        time.sleep(0.01)
        now = target.text
        if now != text:
            text, last_change = now, time.monotonic()
        elif status().get("state") == "idle" and time.monotonic() - last_change > 2.0:
            break
    typed = text[len(before):] if text.startswith(before) else text
    # The box stamps its own last change: the poll above only says when it was noticed.
    stamped = target.changed_at
    if stamped is not None and stamped >= released:
        last_change = stamped
    return {"release_to_last_char_s": last_change - released, "chars": len(typed), "typed": typed}


def run(repeat: int, keep: bool = False, via: str = "both") -> None:
    model = tiny_en_ct2()
    recs = {5: speech(5.0), 60: speech(60.0)}
    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp, XServer() as x, x.tray(), VirtualMic() as mic:
        if keep:
            tmp = tempfile.mkdtemp(prefix="bench-app-kept-")
            print(f"app log: {tmp}/app.err")
        root = Path(tmp)
        for name in ("CONFIG", "DATA", "CACHE", "LOG", "STATE"):
            os.environ[f"DICTATE_{name}_DIR"] = str(root / name.lower())
        os.environ["HF_HUB_OFFLINE"] = "1"
        (root / "config").mkdir()
        (root / "config" / "config.toml").write_text("[output]\ntrailing_space = false\n")
        env = {**x.env, **mic.env, "PYTHONPATH": str(REPO)}
        target = TypeTarget(env, root / "target.json")
        hotkey = have_hotkeys()
        t0 = time.monotonic()
        app = subprocess.Popen([sys.executable, "-m", "dictate", "-vv" if keep else "-v", "--engine", "faster-whisper", "--model",
                                str(model), "--language", "en"], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=(root / "app.err").open("w"))
        try:
            def icon_mapped():
                for panel in x.search("--name", "^panel$"):
                    if any(n == "dictate" and x.viewable(w) for w, n in x.children(panel)):
                        return True
                return False
            wait_for(icon_mapped, 60, 0.01, "the tray icon")
            icon_s = time.monotonic() - t0
            wait_for(lambda: status().get("model_ready") and status().get("state") == "idle", 120, 0.02,
                     "the model")
            ready_s = time.monotonic() - t0
            print(f"launch -> tray icon shown: {icon_s:.2f} s")
            print(f"launch -> model ready:     {ready_s:.2f} s")
            if not hotkey:
                print("no hotkey listener in this build: push-to-talk by IPC start/stop")

            # Idle CPU with the microphone open (the app reads it to keep the pre-roll fresh).
            time.sleep(2.0)
            c0, w0 = cpu_s(app.pid), time.monotonic()
            time.sleep(10.0)
            idle_pct = 100 * (cpu_s(app.pid) - c0) / (time.monotonic() - w0)
            print(f"idle CPU with the mic open: {idle_pct:.1f} % of one core (10 s)")

            for via_hotkey in ([True, False] if hotkey and via == "both" else [via == "hotkey" and hotkey]):
                how = f"hotkey {CHORD} held" if via_hotkey else "IPC start/stop"
                results: dict[int, list[float]] = {5: [], 60: []}
                for _ in range(repeat):
                    for secs, (rec, audio) in recs.items():
                        r = utterance(x, mic, target, audio, via_hotkey)
                        results[secs].append(r["release_to_last_char_s"])
                        cut_s = audio.size / 16_000
                        words = sum(len(t.split()) for t, (_a, e) in zip(rec.sentences, rec.spans_s) if e <= cut_s)
                        print(f"  [{how}] {audio.size / 16_000:4.1f} s utterance: release -> last char "
                              f"{r['release_to_last_char_s']:.2f} s, {r['chars']} chars typed "
                              f"({words} words said): {r['typed'][:60]!r}…")
                m5, m60 = min(results[5]), min(results[60])
                ratio = f"{m60 / m5:.2f}" if m5 > 0 else "n/a"
                print(f"release -> last character typed [{how}]: short {m5:.2f} s, long {m60:.2f} s, ratio {ratio} "
                      f"(goal <= 1.3; best of {repeat})")
        finally:
            app.terminate()
            try:
                app.wait(30)
            except subprocess.TimeoutExpired:
                app.kill()
            target.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the app's folders and log")
    ap.add_argument("--via", choices=["hotkey", "ipc", "both"], default="both",
                    help="how push-to-talk is pressed and released")
    args = ap.parse_args()
    run(args.repeat, args.keep, args.via)


if __name__ == "__main__":
    main()
