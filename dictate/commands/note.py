"""`dictate note start|stop|status|recover|list|retranscribe`: long notes from the command line.

When the app is running, `start`, `stop` and `status` go to it and act as its tray menu does
(`--input` or `--here` records in this process anyway). Without the app, `start` records in this
process until Ctrl-C, SIGTERM, `--duration`, the end of an `--input` file, or `dictate note stop`
from another shell (which leaves a stop request next to the state file that `start` writes in the
state folder)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

from dictate import ipc
from dictate.audio.journal import Journal, find_unfinished
from dictate.commands.common import add_engine_args, base_options, engine_name, err, load_config, make_engine
from dictate.commands.control import print_answer
from dictate.config import Config
from dictate.errors import DictateError
from dictate.notes import NoteJob, NoteOutcome, NoteRecorder, recover, retranscribe
from dictate.storage import History, NoteStatus

STATE_FILE = "note-recording.json"
STOP_FILE = "note-stop-request"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("note", help="record long notes (crash-safe), list and recover them",
                       description="Long notes: recorded to disk as they are spoken, transcribed with beam search.")
    verbs = p.add_subparsers(dest="note_verb", metavar="ACTION", required=True)

    s = verbs.add_parser("start", help="record a note until stopped")
    s.add_argument("--input", type=Path, metavar="FILE", help="play FILE as the microphone")
    s.add_argument("--speed", type=float, default=1.0, metavar="N", help="with --input: N times real time")
    s.add_argument("--duration", type=float, metavar="S", help="stop after S seconds of audio")
    s.add_argument("--device", help="input device (default: from config)")
    s.add_argument("--format", choices=["flac", "opus"], help="audio format of the note (default: from config)")
    s.add_argument("--background", action=argparse.BooleanOptionalAction, default=None,
                   help="transcribe finished parts while recording (default: from config)")
    s.add_argument("--here", action="store_true", help="record in this process even when the app is running")
    add_engine_args(s)
    s.set_defaults(func=run_start)

    st = verbs.add_parser("stop", help="stop the note being recorded")
    st.add_argument("--no-wait", action="store_true", help="return at once instead of waiting for the note")
    st.add_argument("--timeout", type=float, default=600.0, metavar="S", help="wait at most S seconds")
    st.set_defaults(func=run_stop)

    verbs.add_parser("status", help="is a note being recorded?").set_defaults(func=run_status)

    r = verbs.add_parser("recover", help="find recordings interrupted by a crash; transcribe or discard them")
    r.add_argument("--transcribe", nargs="*", metavar="ID", help="make notes of these (no ID: all of them)")
    r.add_argument("--discard", nargs="+", metavar="ID", help="delete these recordings for good")
    add_engine_args(r)
    r.set_defaults(func=run_recover)

    ls = verbs.add_parser("list", help="notes, dictations and file transcriptions in the history")
    ls.add_argument("--search", metavar="WORDS", help="only entries containing these words")
    ls.add_argument("--kind", choices=["note", "dictation", "file", "all"], default="note")
    ls.add_argument("--pending", action="store_true", help="only notes still waiting for a transcript")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=run_list)

    rt = verbs.add_parser("retranscribe", help="transcribe an entry again (other settings, or retry a pending note)")
    rt.add_argument("id")
    add_engine_args(rt)
    rt.set_defaults(func=run_retranscribe)


# --- the state file that lets another shell find (and stop) the recording --------------------------

def _state_path(cfg: Config) -> Path:
    return cfg.paths.state_dir / STATE_FILE


def _stop_path(cfg: Config) -> Path:
    return cfg.paths.state_dir / STOP_FILE


def _read_state(cfg: Config) -> dict | None:
    try:
        state = json.loads(_state_path(cfg).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pid = state.get("pid")
    journal = state.get("journal")
    if not isinstance(pid, int) or not journal or not _alive(pid):
        return None  # stale: the recorder died (its journal is found by `recover`)
    return state


def _alive(pid: int) -> bool:
    from dictate.audio.journal import _pid_alive

    return _pid_alive(pid)


def _write_state(cfg: Config, data: dict) -> None:
    path = _state_path(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


# --- the running app ------------------------------------------------------------------------------------

# Options that only a recording in this process can honour (the app records with its own settings).
_LOCAL_ONLY = ("duration", "device", "format", "background", "engine", "model", "language", "beam_size",
               "threads", "base_url", "max_new_tokens")


def _ask_app(cfg: Config, command: str) -> dict | None:
    """The running app's answer to `command`, or None when no app is running."""
    try:
        return ipc.request(cfg.paths, {"command": command}, timeout_s=10.0)
    except ipc.NotRunning:
        return None


# --- verbs ---------------------------------------------------------------------------------------------

def _source(args: argparse.Namespace, cfg: Config):
    from dictate.audio import capture

    if args.input is not None:
        return capture.FileSource(args.input, speed=args.speed, ring_capacity_s=cfg.audio.ring_capacity_s)
    device = args.device if args.device is not None else cfg.audio.input_device
    return capture.Microphone(device, preroll_s=0.0, ring_capacity_s=cfg.audio.ring_capacity_s)


def run_start(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    if args.format:
        cfg.notes.audio_format = args.format
    running = _read_state(cfg)
    if running is not None:
        raise DictateError(f"a note is already being recorded (process {running['pid']}); "
                           f"stop it with `dictate note stop`")
    if args.input is None and not args.here and ipc.is_running(cfg.paths):
        given = [f"--{name.replace('_', '-')}" for name in _LOCAL_ONLY if getattr(args, name, None) is not None]
        if given:
            raise DictateError(f"the running app records notes with its own settings: drop {', '.join(given)}, "
                               f"or add --here to record in this process")
        answer = _ask_app(cfg, "note-start")
        if answer is not None:
            return print_answer(answer)
    _offer_recovery(cfg)
    _stop_path(cfg).unlink(missing_ok=True)
    source = _source(args, cfg)
    job = NoteJob.from_config(cfg, engine=engine_name(args, cfg), model=args.model, base=base_options(args, cfg),
                              source=str(args.input) if args.input else "microphone")
    if args.beam_size:
        job = dataclasses.replace(job, options=dataclasses.replace(job.options, beam_size=args.beam_size))
    recorder = NoteRecorder(source, cfg, job, lambda: make_engine(args, cfg), background=args.background,
                            on_notice=err)
    writer = recorder.open()
    try:
        _write_state(cfg, {"pid": os.getpid(), "id": writer.id, "journal": str(writer.folder),
                           "started_at": datetime.now().astimezone().isoformat(timespec="seconds")})
    except OSError as exc:  # recording matters more than being reachable from another shell
        err(f"`dictate note stop` will not reach this recording ({exc.strerror or exc}); stop it with Ctrl-C")
    previous = {sig: signal.signal(sig, lambda *_: recorder.stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
    err(f"recording note {writer.id}" + (f" from {args.input}" if args.input else "")
        + " (stop with Ctrl-C or `dictate note stop`)")
    try:
        recorder.record(args.duration, should_stop=_stop_path(cfg).exists)
        err(f"recorded {recorder.recorded_s:.1f} s; transcribing the rest…")
        outcome = recorder.finish()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _state_path(cfg).unlink(missing_ok=True)
        _stop_path(cfg).unlink(missing_ok=True)
    return _report(outcome)


def _report(outcome: NoteOutcome) -> int:
    if outcome.note is None:
        raise DictateError(outcome.error or "the note could not be written")
    if outcome.text:
        sys.stdout.write(outcome.text + "\n")
        sys.stdout.flush()
    t = outcome.timings
    if outcome.status == NoteStatus.PENDING:
        err(f"note {outcome.note.id} saved with its audio but not transcribed: {outcome.error}; "
            f"retry with `dictate note retranscribe {outcome.note.id}`")
        return 1
    extra = ""
    if "stop_to_ready_s" in t:
        extra = (f"; ready {t['stop_to_ready_s']:.1f} s after stop (engine time for the remaining "
                 f"{t['remainder_audio_s']:.1f} s of audio: {t['remainder_engine_s']:.1f} s)")
    err(f"note saved in {outcome.note.folder}{extra}")
    return 0


def run_stop(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    state = _read_state(cfg)
    if state is None:
        answer = _ask_app(cfg, "note-stop")
        if answer is not None:
            return print_answer(answer)
        _state_path(cfg).unlink(missing_ok=True)
        unfinished = find_unfinished(cfg.paths.journal_dir)
        hint = f"; {len(unfinished)} interrupted recording(s): run `dictate note recover`" if unfinished else ""
        raise DictateError("no note is being recorded" + hint)
    _stop_path(cfg).parent.mkdir(parents=True, exist_ok=True)
    _stop_path(cfg).write_text(str(time.time()), encoding="utf-8")
    err(f"stopping note {state['id']}")
    if args.no_wait:
        return 0
    deadline = time.monotonic() + args.timeout
    while _read_state(cfg) is not None:
        if time.monotonic() > deadline:
            raise DictateError(f"note {state['id']} is still being transcribed; it will appear in `dictate note list`")
        time.sleep(0.1)
    err(f"note {state['id']} is ready (`dictate note list`)")
    return 0


def run_status(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    state = _read_state(cfg)
    unfinished = [j for j in find_unfinished(cfg.paths.journal_dir)]
    try:
        app = _ask_app(cfg, "note-status")
    except ipc.IpcError as exc:  # a stuck app must not hide what this shell can see
        err(str(exc))
        app = None
    if state is not None:
        seconds = Journal(Path(state["journal"])).duration_s
        sys.stdout.write(f"recording {state['id']} ({_hms(seconds)} so far, process {state['pid']})\n")
    if app is not None and (state is None or app.get("recording")):
        sys.stdout.write(f"{app.get('message') or ('recording' if app.get('recording') else 'not recording')}\n")
    elif state is None:
        sys.stdout.write("not recording\n")
    if unfinished:
        sys.stdout.write(f"{len(unfinished)} interrupted recording(s): run `dictate note recover`\n")
    pending = History(cfg.paths.history_db).list(kind="note", status=NoteStatus.PENDING) \
        if cfg.paths.history_db.exists() else []
    if pending:
        sys.stdout.write(f"{len(pending)} note(s) waiting for a transcript: `dictate note list --pending`\n")
    return 0


def _offer_recovery(cfg: Config) -> None:
    unfinished = find_unfinished(cfg.paths.journal_dir)
    if unfinished:
        err(f"{len(unfinished)} interrupted recording(s) found: run `dictate note recover`")


def run_recover(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    journals = {j.id: j for j in find_unfinished(cfg.paths.journal_dir)}
    if args.discard:
        for jid in args.discard:
            if jid not in journals:
                raise DictateError(f"no interrupted recording {jid} (see `dictate note recover`)")
            journals.pop(jid).delete()
            err(f"deleted recording {jid}")
    if args.transcribe is None:
        if not journals:
            err("no interrupted recordings")
            return 0
        for j in journals.values():
            samples = j.repair()
            why = "; ".join(j.sidecar.get("notices", [])) or j.state
            sys.stdout.write(f"{j.id}  {_hms(samples / 16000)}  {why}\n")
        err("make notes of them with `dictate note recover --transcribe [ID...]`, "
            "or delete one with `dictate note recover --discard ID`")
        return 0
    wanted = args.transcribe or list(journals)
    missing = [jid for jid in wanted if jid not in journals]
    if missing:
        raise DictateError(f"no interrupted recording {', '.join(missing)} (see `dictate note recover`)")
    overrides = {"beam_size": args.beam_size, "language": args.language,
                 "max_new_tokens": args.max_new_tokens, "temperature": 0.0 if args.max_new_tokens else None}
    status = 0
    for jid in wanted:
        outcome = recover(cfg, journals[jid], lambda: make_engine(args, cfg), engine=args.engine, model=args.model,
                          overrides=overrides)
        status = max(status, _report(outcome) if outcome.note is not None else _fail(outcome))
    return status


def _fail(outcome: NoteOutcome) -> int:
    err(outcome.error or "the note could not be written")
    return 1


def run_list(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    history = History(cfg.paths.history_db)
    kind = None if args.kind == "all" else args.kind
    if args.search:
        entries = history.search(args.search, kind=kind, limit=args.limit)
    else:
        entries = history.list(kind=kind, status=NoteStatus.PENDING if args.pending else None, limit=args.limit)
    if args.pending:
        entries = [e for e in entries if e.status == NoteStatus.PENDING]
    for e in entries:
        if args.json:
            sys.stdout.write(json.dumps({"id": e.id, "kind": e.kind, "created_at": e.created_at, "title": e.title,
                                         "status": e.status, "duration_s": e.duration_s, "location": e.location,
                                         "text": e.text}, ensure_ascii=False) + "\n")
        else:
            when = datetime.fromtimestamp(e.created_at).strftime("%Y-%m-%d %H:%M")
            dur = _hms(e.duration_s) if e.duration_s is not None else "-"
            flag = "" if e.status == NoteStatus.READY else f" [{e.status}]"
            sys.stdout.write(f"{e.id}  {when}  {dur:>7}  {e.kind}{flag}  {e.title}\n")
    if not entries:
        err("nothing found")
    return 0


def run_retranscribe(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    overrides = {"beam_size": args.beam_size, "language": args.language,
                 "max_new_tokens": args.max_new_tokens, "temperature": 0.0 if args.max_new_tokens else None}
    entry = retranscribe(cfg, args.id, lambda: make_engine(args, cfg), engine=args.engine, model=args.model,
                         overrides=overrides)
    sys.stdout.write(entry.text + "\n")
    err(f"{entry.id} transcribed again with {entry.engine} ({entry.model})")
    return 0


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
