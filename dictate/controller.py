"""The headless core of the app and the one place where pipelines are put together.

    ctl = Controller(cfg, sink=my_sink)      # or engine_factory=..., source_factory=... in tests
    ctl.subscribe(on_event)                  # Events, called on the controller's thread
    ctl.start()                              # thread `dictate-controller`; the model loads meanwhile
    ctl.submit(Command(CommandKind.PTT_DOWN))   # from any thread (hotkeys, IPC, tray)
    ctl.submit(Command(CommandKind.PTT_UP))
    ctl.shutdown()

Threads, one owner each: the controller thread owns the state, the open microphone while idle
(reading it keeps the pre-roll fresh) and the subscribers; a dictation's thread reads the mic while
it is leased; `dictate-engine` (EngineWorker) owns the one model, shared by dictation, notes and
file jobs; `dictate-output` types committed text, so a slow sink never stalls capture; a note
records on `dictate-note`. They talk to the controller through its queue only.

Nothing recorded is lost: a dictation whose engine failed is kept in the history with its audio
(status "failed", `dictate note retranscribe ID`); a lost microphone ends the dictation and what
was captured is still transcribed and typed.
"""

from __future__ import annotations

import collections
import itertools
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

from dictate.config import Config
from dictate.dictation import (Dictation, DictationResult, DictationStatus, MicLease, history_options,
                               live_options, live_transcriber)
from dictate.errors import DictateError, OutputError
from dictate.loader import LoadingEngine
from dictate.types import Command, CommandKind, Event, EventKind, TranscribeOptions
from dictate.worker import EngineWorker, Priority

__all__ = ["Controller", "State", "Problem", "live_transcriber", "live_options", "make_engine_factory"]

log = logging.getLogger(__name__)

IDLE_READ_S = 0.05  # the idle microphone is read this often (keeps the ring empty, the pre-roll fresh)
MIC_RETRY_S = 3.0  # a lost microphone is looked for again this often
REPLY_TIMEOUT_S = 5.0


class State:
    IDLE = "idle"
    LOADING = "loading"
    LISTENING = "listening"
    TRANSCRIBING = "transcribing"
    NOTE_RECORDING = "note-recording"
    ERROR = "error"


@dataclass(frozen=True)
class Problem:
    """What is wrong, in one line, and what the user can do about it."""

    cause: str  # microphone, model, engine, output
    message: str
    action: str


ACTIONS = {
    "microphone": "connect a microphone or choose another in the settings ([audio] input_device); "
                  "dictate opens it again by itself",
    "model": "choose another model in the settings ([engine] model) or see `dictate models list`",
    "output": "check `dictate doctor` ([output] backend); the text is kept in the recent dictations",
}


@dataclass
class _Msg:
    """A message from one of the controller's own threads."""

    kind: str
    data: Any = None


def _engine_key(cfg: Config) -> tuple:
    """The [engine] settings the loaded engine depends on."""
    e = cfg.engine
    return (e.name, str(e.model), e.device, e.compute_type, e.threads, tuple(e.fallback), repr(cfg.remote))


def make_engine_factory(cfg: Config, engine_name: str | None = None, model: str | None = None) -> Callable:
    """The engine the app runs on, with the [engine] fallback chain, built when called."""
    from dictate.commands.common import make_engine

    args = SimpleNamespace(engine=engine_name, model=model)
    return lambda: make_engine(args, cfg)


class _WorkerEngine:
    """An Engine over the shared worker, as a batch job (live dictation goes first)."""

    def __init__(self, worker: EngineWorker) -> None:
        self._worker = worker

    def transcribe(self, audio, options: TranscribeOptions) -> list:
        return self._worker.submit(audio, options, priority=Priority.BATCH).result()


class _Output:
    """The `dictate-output` thread: types committed text in dictation order (a dictation that
    starts while the previous one's tail is transcribed waits for it), one emit at a time.

    A push-to-talk dictation's text is held while its chord is down: our hotkey grab has the
    keyboard then (typed keys would go to it, not to the window), and a typed key with the held
    modifiers would be the chord, or a shortcut, itself. `release(seq)` types what was held, in
    order, once; `release(seq, discard=True)` (cancelled while held) types nothing of it."""

    def __init__(self, sink_ref: Callable[[], Any], on_error: Callable[[str], None]) -> None:
        self._sink_ref = sink_ref
        self._on_error = on_error
        self._queue: queue.Queue = queue.Queue()
        self._buffers: dict[int, list[tuple[int, str | None]]] = collections.defaultdict(list)
        self._held: set[int] = set()
        self._discarded: set[int] = set()
        self._next = 1  # the dictation whose text is typed now
        self.typed: list[tuple[int, str]] = []  # (delete_chars, text) as emitted, for status and tests
        self._thread = threading.Thread(target=self._run, name="dictate-output", daemon=True)
        self._thread.start()

    def put(self, seq: int, delete_chars: int, text: str | None) -> None:
        """`text` None closes dictation `seq`."""
        self._queue.put((seq, delete_chars, text))

    def hold(self, seq: int) -> None:
        """Keep dictation `seq`'s text until `release(seq)`; call it before the dictation starts."""
        self._queue.put(("hold", seq))

    def release(self, seq: int, discard: bool = False) -> None:
        self._queue.put(("discard" if discard else "release", seq))

    def close(self, timeout_s: float | None = None) -> None:
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if len(item) == 2:
                action, seq = item
                if action == "hold":
                    self._held.add(seq)
                    continue
                self._held.discard(seq)
                if action == "discard":
                    self._discarded.add(seq)
                    self._buffers[seq] = [(d, t) for d, t in self._buffers.get(seq, []) if t is None]
            else:
                seq, delete, text = item
                if seq not in self._discarded or text is None:
                    self._buffers[seq].append((delete, text))
            self._drain()

    def _drain(self) -> None:
        while self._next in self._buffers and self._next not in self._held:
            items = self._buffers.pop(self._next)
            closed = any(text is None for _, text in items)
            for delete, text in _joined([(d, t) for d, t in items if t is not None]):
                self._emit(delete, text)
            if not closed:
                self._buffers[self._next] = []  # still open: later dictations wait
                break
            self._discarded.discard(self._next)
            self._next += 1

    def _emit(self, delete: int, text: str) -> None:
        sink = self._sink_ref()
        self.typed.append((delete, text))
        if sink is None:
            return
        t0 = time.perf_counter()
        try:
            sink.emit(delete, text)
            log.debug("output: %d back, %d chars in %.0f ms", delete, len(text), (time.perf_counter() - t0) * 1000)
        except OutputError as exc:
            self._on_error(str(exc))
        except Exception as exc:  # a sink bug must not stop the text that follows
            log.exception("output sink failed")
            self._on_error(f"typing failed: {exc}")


def _joined(items: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Consecutive pieces of text without BackSpaces become one emit (held text comes out at once)."""
    out: list[tuple[int, str]] = []
    for delete, text in items:
        if out and delete == 0:
            out[-1] = (out[-1][0], out[-1][1] + text)
        else:
            out.append((delete, text))
    return out


class Controller:
    """See the module docstring. `engine_factory` (zero-argument, returns an Engine) and
    `source_factory` (zero-argument, returns a Microphone-like source) replace the real ones."""

    def __init__(self, cfg: Config, *, engine_name: str | None = None, model: str | None = None,
                 language: str | None = None, source_factory: Callable[[], Any] | None = None, sink: Any = None,
                 engine_factory: Callable[[], Any] | None = None, beam_size: int | None = None,
                 max_new_tokens: int | None = None) -> None:
        self.cfg = cfg
        self.engine_name = engine_name or cfg.engine.name
        self.model_name = str(model or cfg.engine.model)
        self.options = live_options(cfg, language=language, beam_size=beam_size, max_new_tokens=max_new_tokens)
        self._language = language
        self._live_overrides = dict(beam_size=beam_size, max_new_tokens=max_new_tokens)
        self._cfg_language = cfg.engine.language
        self._engine_given = engine_factory is not None
        self._engine_cfg = _engine_key(cfg)  # what the loaded engine was built from
        self._source_factory = source_factory or self._default_source
        self._sink = sink
        self._sink_given = sink is not None
        self.loader = LoadingEngine(engine_factory or make_engine_factory(cfg, engine_name, model))
        self.worker = EngineWorker(self.loader)
        self._queue: queue.Queue = queue.Queue()
        self._subscribers: list[Callable[[Event], None]] = []
        self._state = State.LOADING
        self._problem: Problem | None = None
        self._on_demand = bool(cfg.audio.open_on_demand)
        self._mic: Any = None  # the open microphone (not with open_on_demand)
        self._mic_leased = False
        self._mic_retry_at = 0.0
        self._last_idle_read = 0.0
        self._dictations: list[Dictation] = []
        self._held_output: set[int] = set()  # push-to-talk dictations whose chord is still down
        self._seq = itertools.count(1)
        self._note: Any = None  # NoteRecorder while a note records or is being finished
        self._note_thread: threading.Thread | None = None
        self._note_recording = False
        self.recent: collections.deque[DictationResult] = collections.deque(maxlen=max(1, cfg.history.recent_dictations))
        self._quitting = False
        self._quit_deadline = float("inf")
        self._output = _Output(lambda: self._sink, lambda msg: self._post_problem("output", msg))
        self._thread = threading.Thread(target=self._run, name="dictate-controller", daemon=True)
        self._started = False

    # --- public API (any thread) ----------------------------------------------------------------

    def start(self) -> "Controller":
        """Start the controller thread; the model loads in the background (state "loading")."""
        self._started = True
        # Imported here, on the caller's thread: importing the output package on the controller's
        # thread while the caller imports the hotkeys (which share dictate.output.modifiers) made
        # Python's import lock report a deadlock and end the controller thread.
        import dictate.output  # noqa: F401
        self.loader.start(on_done=lambda loader: self._queue.put(_Msg("loaded")))
        self._thread.start()
        return self

    def submit(self, command: Command) -> None:
        self._queue.put(command)

    def reconfigure(self) -> None:
        """The config object changed (the settings were saved): live options follow at once, for
        the next dictation, and a changed engine or model loads in the background while the current
        one keeps serving."""
        self._queue.put(_Msg("reconfigure"))

    def request(self, command: Command, timeout_s: float = REPLY_TIMEOUT_S) -> tuple[bool, str]:
        """Submit and wait for the controller's one-line answer."""
        if not self._thread.is_alive():
            return False, "dictate is not running"
        reply: queue.Queue = queue.Queue(maxsize=1)
        self._queue.put(Command(command.kind, {**command.payload, "reply": reply}))
        try:
            return reply.get(timeout=timeout_s)
        except queue.Empty:
            return False, "dictate did not answer in time"

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        """`callback(event)` runs on the controller's thread: keep it short (queue it on)."""
        self._subscribers.append(callback)

    @property
    def state(self) -> str:
        return self._state

    @property
    def problem(self) -> Problem | None:
        return self._problem

    @property
    def model_ready(self) -> bool:
        return self.loader.loaded

    @property
    def note_id(self) -> str | None:
        note = self._note
        return note.note_id if note is not None else None

    @property
    def note_elapsed_s(self) -> float | None:
        """Seconds recorded in the current note (None when no note is recording), for the menu."""
        note = self._note
        return note.recorded_s if note is not None and self._note_recording else None

    @property
    def typed(self) -> list[tuple[int, str]]:
        """What went to the sink so far, as (delete_chars, text)."""
        return list(self._output.typed)

    def recent_dictations(self, limit: int | None = None) -> list:
        """The latest dictations from the history (HistoryEntry, newest first), for the tray menu."""
        from dictate.storage import History

        limit = self.cfg.history.recent_dictations if limit is None else limit
        try:
            return History(self.cfg.paths.history_db).list(kind="dictation", limit=limit)
        except DictateError as exc:
            log.warning("recent dictations: %s", exc)
            return []

    def transcribe_file(self, path: str | Path, options: TranscribeOptions | None = None, on_progress=None):
        """A file job on the shared engine (after any live work); runs on the caller's thread."""
        from dictate.batch import transcribe_file

        opts = options or TranscribeOptions(language=self._language or self.cfg.engine.language or None,
                                            hotwords=tuple(self.cfg.engine.hotwords), beam_size=5, vad_filter=True)
        return transcribe_file(path, _WorkerEngine(self.worker), opts, on_progress=on_progress)

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop dictations (what was said is still transcribed, up to `timeout_s`) and notes, close
        the microphone, the engine and the sink."""
        if self._thread.is_alive():
            self._queue.put(Command(CommandKind.QUIT, {"timeout_s": timeout_s}))
            self._thread.join(timeout_s + 2.0)
        elif not self._started:
            self._close()

    def handle_ipc(self, message: dict) -> dict:
        """One IPC request (see dictate.ipc) -> {"ok", "message", ...}; runs on the IPC thread."""
        name = message.get("command") if isinstance(message, dict) else None
        if name == "status":
            return {"ok": True, "message": self.status_line(), "state": self.state, "model_ready": self.model_ready}
        if name == "note-status":
            elapsed = self.note_elapsed_s
            if elapsed is None:
                return {"ok": True, "message": "not recording", "recording": False}
            return {"ok": True, "message": f"recording {self.note_id} ({_mmss(elapsed)} so far)", "recording": True,
                    "id": self.note_id, "elapsed_s": round(elapsed, 1)}
        if name == "show":
            self._queue.put(_Msg("event", Event(EventKind.SHOW, {})))
            return {"ok": True, "message": "dictate is already running"}
        try:
            kind = CommandKind(name)
        except ValueError:
            return {"ok": False, "message": f"unknown command {name!r}"}
        if kind == CommandKind.QUIT:
            self.submit(Command(kind))
            return {"ok": True, "message": "quitting"}
        ok, text = self.request(Command(kind))
        return {"ok": ok, "message": text, "state": self.state}

    def status_line(self) -> str:
        state = self.state
        if state == State.ERROR and self._problem is not None:
            return f"error: {self._problem.message}"
        if state == State.NOTE_RECORDING:
            return f"recording note {self.note_id} ({_mmss(self.note_elapsed_s or 0.0)} so far)"
        return state

    # --- the controller thread ------------------------------------------------------------------

    def _run(self) -> None:
        self._open_sink()
        if not self._on_demand:
            self._open_mic(announce=True)
        self._update_state(force=True)  # subscribers learn the first state too
        while True:
            try:
                item = self._queue.get(timeout=IDLE_READ_S)
            except queue.Empty:
                item = None
            if item is not None:
                try:
                    self._dispatch(item)
                except Exception:  # a bug in one command must not take the app down
                    log.exception("controller: %r failed", item)
            self._idle()
            if self._quitting and self._may_exit():
                break
        self._close()

    def _dispatch(self, item: Any) -> None:
        if isinstance(item, Command):
            reply = item.payload.get("reply")
            answer = self._command(item)
            if reply is not None:
                reply.put(answer)
            return
        kind, data = item.kind, item.data
        if kind == "event":
            self._publish(data)
        elif kind == "level":
            self._publish(Event(EventKind.LEVEL, {"dbfs": round(data, 1)}))
        elif kind == "released":
            self._released(*data)
        elif kind == "dictation-done":
            self._dictation_done(data)
        elif kind == "note-done":
            self._note_done(data)
        elif kind == "loaded":
            self._loaded()
        elif kind == "reconfigure":
            self._reconfigure()
        elif kind == "replaced":
            self._replaced(*data)
        elif kind == "problem":
            self._set_problem(data)
        self._update_state()

    def _command(self, cmd: Command) -> tuple[bool, str]:
        k = cmd.kind
        if k in (CommandKind.START, CommandKind.PTT_DOWN):
            answer = self._start_dictation(hold_output=k == CommandKind.PTT_DOWN)
        elif k in (CommandKind.STOP, CommandKind.PTT_UP):
            answer = self._stop_dictation()
        elif k == CommandKind.TOGGLE:
            answer = self._stop_dictation() if self._listening() else self._start_dictation()
        elif k == CommandKind.CANCEL:
            answer = self._cancel_dictation()
        elif k == CommandKind.NOTE_START:
            answer = self._start_note()
        elif k == CommandKind.NOTE_STOP:
            answer = self._stop_note()
        elif k == CommandKind.QUIT:
            answer = self._quit(float(cmd.payload.get("timeout_s", 10.0)))
        else:
            answer = (False, f"unknown command {k}")
        self._update_state()
        return answer

    # --- events and state -------------------------------------------------------------------------

    def _publish(self, event: Event) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                log.exception("controller: a subscriber failed on %s", event.kind)

    def _post(self, kind: EventKind, payload: dict) -> None:
        """From any thread: publish on the controller's thread."""
        self._queue.put(_Msg("event", Event(kind, payload)))

    def _post_problem(self, cause: str, message: str, action: str | None = None) -> None:
        self._queue.put(_Msg("problem", Problem(cause, message, action or ACTIONS.get(cause, ""))))

    def _set_problem(self, problem: Problem) -> None:
        self._problem = problem
        log.error("%s (%s)", problem.message, problem.action)
        self._publish(Event(EventKind.ERROR, {"message": problem.message, "action": problem.action,
                                              "cause": problem.cause}))
        self._publish(Event(EventKind.CUE, {"sound": "error"}))

    def _clear_problem(self, *causes: str) -> None:
        if self._problem is not None and self._problem.cause in causes:
            self._problem = None

    def _listening(self) -> bool:
        return any(d.listening for d in self._dictations)

    def _compute_state(self) -> str:
        if self._listening():
            return State.LISTENING
        if self._note_recording:
            return State.NOTE_RECORDING
        if self._dictations:
            return State.TRANSCRIBING
        if self._problem is not None:
            return State.ERROR
        if not self.loader.ready:
            return State.LOADING
        return State.IDLE

    def _update_state(self, force: bool = False) -> None:
        state = self._compute_state()
        if state != self._state or force:
            self._state = state
            log.info("state: %s", state)
            self._publish(Event(EventKind.STATE, {"state": state}))

    def _loaded(self) -> None:
        if self.loader.error is not None:
            self._set_problem(Problem("model", str(self.loader.error), ACTIONS["model"]))
        else:
            self._publish(Event(EventKind.NOTICE, {"message": "the model is ready"}))

    def _reconfigure(self) -> None:
        if self.cfg.engine.language != self._cfg_language:
            self._language = None  # a language chosen in the settings wins over the one given at launch
        self._cfg_language = self.cfg.engine.language
        self.options = live_options(self.cfg, language=self._language, **self._live_overrides)
        key = _engine_key(self.cfg)
        if key == self._engine_cfg or self._engine_given:
            return
        self._engine_cfg = key
        self.engine_name, self.model_name = self.cfg.engine.name, str(self.cfg.engine.model)
        log.info("engine: loading %s (%s); the current one serves meanwhile", self.model_name, self.engine_name)
        self._publish(Event(EventKind.NOTICE, {"message": f"loading the model {self.model_name}…"}))
        self.loader.replace(make_engine_factory(self.cfg),
                            lambda engine, error: self._queue.put(_Msg("replaced", (engine, error))))

    def _replaced(self, engine: Any, error: Any) -> None:
        if error is not None:
            self._publish(Event(EventKind.ERROR, {"message": f"the new model did not load: {error}; the previous "
                                                             "one is still in use", "action": ACTIONS["model"],
                                                  "cause": "model"}))
            return
        self._clear_problem("model")
        self._publish(Event(EventKind.NOTICE, {"message": f"the model {self.model_name} is ready"}))

    # --- the sink and the microphone ----------------------------------------------------------------

    def _open_sink(self) -> None:
        if self._sink_given:
            return
        try:
            from dictate.output import create_sink

            self._sink = create_sink(self.cfg)
        except DictateError as exc:
            self._set_problem(Problem("output", f"cannot type into windows: {exc}", ACTIONS["output"]))
        except ImportError as exc:
            self._set_problem(Problem("output", f"typing is not available in this build ({exc})", ACTIONS["output"]))

    def _default_source(self):
        from dictate.audio.capture import Microphone

        a = self.cfg.audio
        return Microphone(a.input_device, preroll_s=a.preroll_s, ring_capacity_s=a.ring_capacity_s)

    def _open_mic(self, announce: bool) -> bool:
        """Open the microphone for the app's lifetime (reading it keeps the pre-roll)."""
        try:
            mic = self._source_factory()
            mic.start(recording=False)
        except DictateError as exc:
            self._mic = None
            self._mic_retry_at = time.monotonic() + MIC_RETRY_S
            if announce or self._problem is None or self._problem.cause != "microphone":
                self._set_problem(Problem("microphone", str(exc), ACTIONS["microphone"]))
            return False
        self._mic, self._mic_leased = mic, False
        if self._problem is not None and self._problem.cause == "microphone":
            self._clear_problem("microphone")
            self._publish(Event(EventKind.NOTICE, {"message": "the microphone is back"}))
        return True

    def _close_mic(self) -> None:
        mic, self._mic = self._mic, None
        if mic is not None:
            try:
                mic.stop()
            except Exception as exc:  # the device may be gone already
                log.warning("microphone: %s", exc)

    def _mic_lost(self, message: str) -> None:
        self._close_mic()
        self._mic_retry_at = time.monotonic() + MIC_RETRY_S
        self._set_problem(Problem("microphone", message, ACTIONS["microphone"]))

    def _idle(self) -> None:
        """Between commands: keep the idle microphone read (pre-roll) or look for a lost one."""
        now = time.monotonic()
        if self._on_demand or self._quitting:
            return
        if self._mic is None:
            if now >= self._mic_retry_at and not self._mic_leased:
                _rescan_devices()
                self._open_mic(announce=False)
                self._update_state()
            return
        if self._mic_leased or now - self._last_idle_read < IDLE_READ_S:
            return
        self._last_idle_read = now
        try:
            self._mic.read()
        except DictateError as exc:
            self._mic_lost(str(exc))
            self._update_state()

    def _lease_mic(self) -> Any:
        """The microphone for a dictation or note, or None (the problem has been published)."""
        if self._on_demand:
            try:
                return self._source_factory()
            except DictateError as exc:
                self._set_problem(Problem("microphone", str(exc), ACTIONS["microphone"]))
                return None
        if self._mic is None:
            _rescan_devices()
            if not self._open_mic(announce=True):
                return None
        if self._mic_leased:
            return None
        self._mic_leased = True
        return self._mic

    def _released(self, mic: Any, error: str | None) -> None:
        """A dictation or note has given the microphone back (before its tail is transcribed)."""
        if self._on_demand or mic is not self._mic:
            if error:
                self._set_problem(Problem("microphone", error, ACTIONS["microphone"]))
            return
        self._mic_leased = False
        if error:
            self._mic_lost(error)

    def _lease(self, mic: Any, *, keep_audio: bool, trailing_s: float, hold: bool = False) -> MicLease:
        return MicLease(mic, owned=self._on_demand, trailing_s=trailing_s, keep_audio=keep_audio, hold=hold,
                        on_release=lambda error: self._queue.put(_Msg("released", (mic, error))),
                        on_level=lambda level: self._queue.put(_Msg("level", level)))

    # --- dictation ----------------------------------------------------------------------------------

    def _start_dictation(self, hold_output: bool = False) -> tuple[bool, str]:
        """`hold_output`: push-to-talk; the text is typed once the chord is up (`_release_output`)."""
        if self._quitting:
            return False, "dictate is quitting"
        if self._listening():
            return True, "already listening"
        if self._note_recording:
            return False, "a note is being recorded; stop it first (`dictate note stop`)"
        if self.loader.error is not None:
            self._set_problem(Problem("model", str(self.loader.error), ACTIONS["model"]))
            return False, str(self.loader.error)
        mic = self._lease_mic()
        if mic is None:
            why = self._problem.message if self._problem else "the microphone is busy"
            return False, why
        self._clear_problem("engine", "output")
        seq = next(self._seq)
        lease = self._lease(mic, keep_audio=True, trailing_s=self.cfg.audio.trailing_s, hold=True)
        dictation = Dictation(seq, lease, self.worker, self.cfg, self.options, output=self._output.put,
                              post_event=self._post_dictation_event,
                              on_done=lambda result: self._queue.put(_Msg("dictation-done", result)),
                              store=self._store_dictation, trailing_space=self.cfg.output.trailing_space,
                              punctuator=self._live_punctuator())
        self._dictations.append(dictation)
        self._release_output()  # a chord that went up without its release reaching us
        if hold_output:
            self._output.hold(seq)  # before the dictation's thread can commit anything
            self._held_output.add(seq)
        try:
            dictation.start()
        except RuntimeError as exc:  # cannot start a thread: give everything back
            self._dictations.remove(dictation)
            self._release_output()
            self._output.put(seq, 0, None)
            lease.finish()
            return False, f"cannot start dictation: {exc}"
        self._publish(Event(EventKind.CUE, {"sound": "start"}))
        waiting = "" if self.loader.ready else " (the model is still loading; your words are kept)"
        return True, "listening" + waiting

    def _live_punctuator(self) -> Any:
        """A LivePunctuator when config asks for personal punctuation in live dictation (the model
        is loaded once, again when retrained); a model that cannot be loaded is a notice, and the
        dictation types the engine's punctuation."""
        pc = self.cfg.punctuation
        if not (pc.enabled and pc.apply_live and pc.model_path):
            return None
        try:
            from dictate.punctuation.live import LivePunctuator, live_model

            return LivePunctuator(live_model(pc.model_path), pause_weight=pc.pause_weight)
        except Exception as exc:
            log.warning("live punctuation: %s", exc)
            self._publish(Event(EventKind.NOTICE, {"message": f"your punctuation model is not used: {exc}"}))
            return None

    def _post_dictation_event(self, kind: str, payload: dict) -> None:
        self._post(EventKind.COMMITTED if kind == "committed" else EventKind.PARTIAL, payload)

    def _release_output(self, discard: set[int] | None = None) -> None:
        """The chord is up (or the dictation is stopped another way): type what was held."""
        for seq in sorted(self._held_output):
            self._output.release(seq, discard=seq in (discard or ()))
        self._held_output.clear()

    def _stop_dictation(self) -> tuple[bool, str]:
        self._release_output()  # also when the dictation already ended (microphone lost) during the hold
        listening = [d for d in self._dictations if d.listening]
        if not listening:
            return True, "not listening"
        for d in listening:
            d.lease.request_stop()
            log.debug("dictation %d: stop requested", d.seq)
        self._publish(Event(EventKind.CUE, {"sound": "stop"}))
        return True, "transcribing"

    def _cancel_dictation(self) -> tuple[bool, str]:
        targets = [d for d in self._dictations if d.listening] or self._dictations[-1:]
        if not targets:
            return True, "nothing to cancel"
        self._release_output(discard={d.seq for d in targets})  # held text of a cancelled dictation is never typed
        for d in targets:
            d.cancel()
        self._publish(Event(EventKind.CUE, {"sound": "cancel"}))
        return True, "cancelled"

    def _dictation_done(self, result: DictationResult) -> None:
        self._dictations = [d for d in self._dictations if d.seq != result.seq]
        if result.status == DictationStatus.FAILED:
            where = f"`dictate note retranscribe {result.history_id}`" if result.history_id else "the log"
            self._set_problem(Problem("engine", f"transcription failed: {result.error}",
                                      f"the audio is kept; retry with {where}"))
        if result.status != DictationStatus.CANCELLED and result.text:
            self.recent.appendleft(result)
        # The overlay tells "no speech heard" from a cancel or a failure by this.
        self._publish(Event(EventKind.DONE, {"status": result.status, "text": result.text,
                                             "history_id": result.history_id}))

    def _store_dictation(self, dictation: Dictation, result: DictationResult) -> None:
        """On the dictation's thread: the history entry, with the audio when configured (always
        when the engine failed, so that it can be transcribed again; and while corrections are
        collected as training data, so that an edit of the text can make a pair)."""
        from dictate.longform import title_from
        from dictate.storage import AUDIO_FORMATS, History, HistoryEntry, NoteStatus, encode_audio

        failed = result.status == DictationStatus.FAILED
        audio_path: Path | None = None
        error = result.error
        keep = self.cfg.history.keep_dictation_audio or self.cfg.dataset.collect_corrections
        if (failed or keep) and dictation.lease.chunks:
            fmt = self.cfg.notes.audio_format
            folder = self.cfg.paths.data_dir / "dictations"
            try:
                folder.mkdir(parents=True, exist_ok=True)
                audio_path = encode_audio(dictation.lease.chunks, folder / f"{dictation.id}.{AUDIO_FORMATS[fmt][3]}",
                                          fmt)
            except (OSError, OutputError) as exc:
                log.error("dictation %s: cannot keep the audio: %s", dictation.id, exc)
                error = f"{error}; the audio could not be kept: {exc}" if error else None
                audio_path = None
        when = datetime.fromtimestamp(dictation.started_at).strftime("%Y-%m-%d %H:%M")
        model = getattr(self.loader, "model_path", None) or self.model_name
        engine = getattr(self.loader, "active_name", None) or self.engine_name
        entry = HistoryEntry(id=dictation.id, kind="dictation", created_at=dictation.started_at,
                             title=title_from(result.text, f"Dictation {when}"), text=result.text,
                             status="failed" if failed else NoteStatus.READY, duration_s=round(result.duration_s, 3),
                             engine=str(engine), model=str(model), options=history_options(self.options),
                             location=str(audio_path.parent) if audio_path else None,
                             audio_path=str(audio_path) if audio_path else None, error=error)
        History(self.cfg.paths.history_db).add(entry)
        result.history_id, result.audio_path = entry.id, entry.audio_path

    # --- notes --------------------------------------------------------------------------------------

    def _start_note(self) -> tuple[bool, str]:
        from dictate.notes import NoteJob, NoteRecorder

        if self._quitting:
            return False, "dictate is quitting"
        if self._note is not None:
            if self._note_recording:
                return True, f"already recording note {self.note_id}"
            return False, "the last note is still being transcribed; try again in a moment"
        if self._listening():
            return False, "dictation is running; stop it first"
        mic = self._lease_mic()
        if mic is None:
            return False, self._problem.message if self._problem else "the microphone is busy"
        lease = self._lease(mic, keep_audio=False, trailing_s=0.0)
        base = TranscribeOptions(language=self.options.language, hotwords=self.options.hotwords,
                                 max_new_tokens=self.options.max_new_tokens, temperature=self.options.temperature)
        job = NoteJob.from_config(self.cfg, engine=self.engine_name, model=self.model_name, base=base)
        worker = self.worker
        recorder = NoteRecorder(lease, self.cfg, job, lambda: _WorkerEngine(worker),
                                on_notice=lambda message: self._post(EventKind.NOTICE, {"message": message}))
        try:
            writer = recorder.open()
        except DictateError as exc:
            lease.finish()
            return False, str(exc)
        self._note, self._note_recording = recorder, True
        self._note_thread = threading.Thread(target=self._record_note, args=(recorder,), name="dictate-note",
                                             daemon=True)
        self._note_thread.start()
        self._publish(Event(EventKind.CUE, {"sound": "start"}))
        return True, f"recording note {writer.id}"

    def _record_note(self, recorder) -> None:
        """The `dictate-note` thread: record until stopped, then make the note."""
        outcome: Any = None
        try:
            try:
                recorder.record()
            finally:
                self._queue.put(_Msg("note-done", None))  # recording over: dictation may start again
            outcome = recorder.finish()
        except DictateError as exc:
            outcome = exc
        except Exception as exc:
            log.exception("note recording failed")
            outcome = DictateError(f"the note failed: {exc}")
        self._queue.put(_Msg("note-done", outcome))

    def _note_done(self, outcome: Any) -> None:
        if outcome is None:
            self._note_recording = False
            return
        self._note, self._note_thread, self._note_recording = None, None, False
        if isinstance(outcome, DictateError):
            self._set_problem(Problem("engine", str(outcome), "the recording is kept: see `dictate note recover`"))
        elif outcome.note is None:
            self._set_problem(Problem("engine", outcome.error or "the note could not be written",
                                      "the recording is kept: see `dictate note recover`"))
        elif outcome.error:
            self._set_problem(Problem("engine", f"note {outcome.note.id} not transcribed: {outcome.error}",
                                      f"the audio is kept; retry with `dictate note retranscribe {outcome.note.id}`"))
        else:
            self._publish(Event(EventKind.NOTICE, {"message": f"note saved: {outcome.note.folder}",
                                                   "note_id": outcome.note.id}))

    def _stop_note(self) -> tuple[bool, str]:
        if self._note is None or not self._note_recording:
            return False, "no note is being recorded"
        self._note.stop()
        self._publish(Event(EventKind.CUE, {"sound": "stop"}))
        return True, f"stopping note {self.note_id}; transcribing the rest"

    # --- quitting -----------------------------------------------------------------------------------

    def _quit(self, timeout_s: float) -> tuple[bool, str]:
        self._quitting = True
        self._quit_deadline = time.monotonic() + timeout_s
        self._release_output()
        for d in self._dictations:
            d.lease.request_stop(0.0)
        if self._note is not None:
            self._note.stop()
        return True, "quitting"

    def _may_exit(self) -> bool:
        if time.monotonic() > self._quit_deadline:
            log.warning("quitting with work still running")
            return True
        return not self._dictations and self._note is None

    def _close(self) -> None:
        if not self._mic_leased:
            self._close_mic()
        self.worker.close(timeout_s=0.5)
        self._output.close(timeout_s=5.0)
        if self._sink is not None:
            try:
                self._sink.close()
            except Exception as exc:
                log.warning("closing the output: %s", exc)
        self._state = State.IDLE


def _rescan_devices() -> None:
    """PortAudio lists devices once; look again before reopening a lost microphone (no stream is
    open then)."""
    import sys

    sd = sys.modules.get("sounddevice")
    if sd is None:
        return
    try:
        sd._terminate()
        sd._initialize()
    except Exception as exc:
        log.debug("rescanning audio devices: %s", exc)


def _mmss(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
