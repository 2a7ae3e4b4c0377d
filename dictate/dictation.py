"""One dictation: a lease on the open microphone through the live pipeline, committed text out.

    lease = MicLease(mic, trailing_s=0.4, on_release=...)      # the mic stays open between dictations
    dictation = Dictation(seq, lease, worker, cfg, options, ...)
    dictation.start()                                          # thread `dictate-dictation-<seq>`
    lease.request_stop()                                       # push-to-talk released: 400 ms more
    dictation.cancel()                                         # or: discard it, nothing stays typed

`live_transcriber()` is the one place where source -> StreamingSession -> EngineWorker ->
LiveTranscriber is put together; the controller and `dictate listen` both use it.

Ownership: the microphone's ring has one reader. While a lease is active, the dictation's thread
reads it; `stop()` hands it back (`on_release`) before the tail is transcribed, so the next
dictation can start while this one finishes.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from dictate.config import Config
from dictate.errors import AudioDeviceError, DictateError, EngineError
from dictate.live import LiveStats, LiveTranscriber
from dictate.streaming import Commit, StreamingParams, StreamingSession
from dictate.types import SAMPLE_RATE_HZ, TranscribeOptions, Word

log = logging.getLogger(__name__)

LEVEL_EVERY_S = 0.1  # input level is reported this often while capturing
UTTERANCE_GAP_S = 0.5  # live punctuation: a pause this long after the held words ends their utterance
SILENCE_DBFS = -100.0


# --- the pipeline factory -------------------------------------------------------------------------

def live_options(cfg: Config, *, language: str | None = None, beam_size: int | None = None,
                 max_new_tokens: int | None = None) -> TranscribeOptions:
    """Options for live windows: config plus per-run overrides (bounded decoding: no fallback)."""
    fields: dict[str, Any] = dict(language=language or cfg.engine.language or None,
                                  hotwords=tuple(cfg.engine.hotwords),
                                  beam_size=beam_size or cfg.engine.live_beam_size,
                                  max_new_tokens=max_new_tokens)
    if max_new_tokens:
        fields["temperature"] = 0.0
    return TranscribeOptions(**fields)


def live_transcriber(cfg: Config, source, worker, *, options: TranscribeOptions,
                     on_commit: Callable[[Commit], None],
                     on_partial: Callable[[list[Word]], None] | None = None) -> LiveTranscriber:
    """source -> StreamingSession (from config) -> worker, as one LiveTranscriber."""
    session = StreamingSession(StreamingParams.from_config(cfg), options)
    return LiveTranscriber(source, worker, session, on_commit, on_partial)


# --- level ------------------------------------------------------------------------------------------

def dbfs(samples: NDArray[np.float32]) -> float:
    """RMS level in dB below full scale (a full-scale sine is -3 dBFS)."""
    if samples.size == 0:
        return SILENCE_DBFS
    power = float(np.mean(np.square(samples, dtype=np.float64)))
    return max(SILENCE_DBFS, 10.0 * math.log10(power)) if power > 0 else SILENCE_DBFS


class LevelMeter:
    """Sums power over `every_s` of audio and reports it as dBFS."""

    def __init__(self, report: Callable[[float], None], every_s: float = LEVEL_EVERY_S) -> None:
        self._report = report
        self._block = max(1, int(every_s * SAMPLE_RATE_HZ))
        self._power = 0.0
        self._count = 0

    def feed(self, samples: NDArray[np.float32]) -> None:
        if samples.size == 0:
            return
        self._power += float(np.sum(np.square(samples, dtype=np.float64)))
        self._count += samples.size
        if self._count >= self._block:
            mean = self._power / self._count
            self._report(max(SILENCE_DBFS, 10.0 * math.log10(mean)) if mean > 0 else SILENCE_DBFS)
            self._power, self._count = 0.0, 0


# --- the microphone lease -------------------------------------------------------------------------

class DictationCancelled(Exception):
    """Raised inside the live loop to end a cancelled dictation at once."""


class MicLease:
    """The source API LiveTranscriber and NoteRecorder expect, over a microphone that stays open.

    `owned=True` (config `open_on_demand`): the lease opens the mic on start and closes it on stop.
    Otherwise start() only begins recording (the pre-roll comes first) and stop() goes back to
    idle and hands the mic back through `on_release(error)`; `error` is the device failure seen,
    if any. Every sample handed out is kept in `audio` when `keep_audio` (dictations are short)."""

    def __init__(self, mic, *, owned: bool = False, trailing_s: float = 0.0,
                 on_release: Callable[[str | None], None] | None = None,
                 on_level: Callable[[float], None] | None = None, keep_audio: bool = True,
                 hold: bool = False) -> None:
        self.mic = mic
        self.hold = hold
        self.owned = owned
        self.trailing_s = trailing_s
        self._on_release = on_release
        self._meter = LevelMeter(on_level) if on_level is not None else None
        self.keep_audio = keep_audio
        self.chunks: list[NDArray[np.float32]] = []
        self._base = mic.samples_out  # samples the mic handed out before this lease (it is idle now)
        self._stop_at: int | None = None  # samples (of this lease) after which input ends
        self._stop_deadline: float | None = None  # ... or this time, if the mic stalls
        self._cancelled = threading.Event()
        self._released = False
        self.device_error: str | None = None
        self.started = False

    # -- what the controller calls (its thread) --

    def request_stop(self, trailing_s: float | None = None) -> None:
        """End the input after `trailing_s` more seconds of audio (default: the lease's)."""
        if self._stop_at is not None:
            return
        trailing = self.trailing_s if trailing_s is None else trailing_s
        ring = getattr(self.mic, "ring", None)
        waiting = 0
        if ring is not None:  # audio already captured but not read yet
            waiting = int(ring.available * SAMPLE_RATE_HZ / max(1, getattr(self.mic, "rate_hz", SAMPLE_RATE_HZ)))
        self._stop_deadline = time.monotonic() + trailing + 0.5
        self._stop_at = self.samples_out + waiting + int(trailing * SAMPLE_RATE_HZ)

    @property
    def stopping(self) -> bool:
        return self._stop_at is not None

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    # -- the source API (the dictation's thread) --

    def start(self, recording: bool = True) -> None:
        if self.owned:
            self.mic.start(recording=True)
        else:
            self.mic.begin_recording()
        self.started = True

    def read(self) -> NDArray[np.float32]:
        if self._cancelled.is_set():
            raise DictationCancelled()
        try:
            chunk = self.mic.read()
        except AudioDeviceError as exc:
            self.device_error = str(exc)
            raise
        self._keep(chunk)
        return chunk

    @property
    def exhausted(self) -> bool:
        if self._stop_at is not None and (self.samples_out >= self._stop_at or time.monotonic() > self._stop_deadline):
            return True
        return bool(getattr(self.mic, "exhausted", False))

    def stop(self) -> NDArray[np.float32]:
        """The source API's stop. When the input really ended (stop requested, cancelled, device
        lost) this is `finish()`. With `hold=True` and the user still speaking (the live loop
        stopped because the engine failed), the lease is kept, so the rest of what is said is
        still captured (`capture_rest()`) and kept for a retry."""
        if self._released:
            return np.zeros(0, np.float32)
        if self.hold and not (self.stopping or self.cancelled or self.device_error or self.exhausted):
            try:
                rest = self.mic.read()
            except AudioDeviceError as exc:
                self.device_error = str(exc)
                return self.finish()
            self._keep(rest)
            return rest
        return self.finish()

    def capture_rest(self, poll_s: float = 0.01) -> None:
        """Keep capturing (into `chunks`) until the input ends, without transcribing."""
        while not self._released and not (self.exhausted or self.cancelled):
            try:
                self._keep(self.mic.read())
            except AudioDeviceError as exc:
                self.device_error = str(exc)
                return
            time.sleep(poll_s)

    def finish(self) -> NDArray[np.float32]:
        """The rest of the audio; the mic goes back to idle (or is closed when owned)."""
        if self._released:
            return np.zeros(0, np.float32)
        self._released = True
        rest = np.zeros(0, np.float32)
        try:
            if self.owned:
                rest = self.mic.stop()
            else:
                try:
                    rest = self.mic.read()
                except AudioDeviceError as exc:
                    self.device_error = self.device_error or str(exc)
                self.mic.end_recording()
        finally:
            self._keep(rest)
            if self._on_release is not None:
                self._on_release(self.device_error)
        return rest

    def _keep(self, chunk: NDArray[np.float32]) -> None:
        if chunk.size:
            if self.keep_audio:
                self.chunks.append(chunk)
            if self._meter is not None:
                self._meter.feed(chunk)

    @property
    def samples_out(self) -> int:
        return self.mic.samples_out - self._base

    def capture_time(self, sample_index: int) -> float:
        return self.mic.capture_time(self._base + sample_index)

    def stats(self):
        return self.mic.stats()

    @property
    def audio(self) -> NDArray[np.float32]:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)

    @property
    def duration_s(self) -> float:
        return sum(c.size for c in self.chunks) / SAMPLE_RATE_HZ


# --- one dictation --------------------------------------------------------------------------------

class DictationStatus:
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"  # the engine failed: the audio is kept in the history for a retry


@dataclass
class DictationResult:
    seq: int
    id: str
    status: str
    text: str
    duration_s: float
    error: str | None = None  # engine failure (status failed) or device failure (text kept)
    device_error: str | None = None
    stats: LiveStats | None = None
    history_id: str | None = None
    audio_path: str | None = None
    started_at: float = field(default_factory=time.time)


Output = Callable[[int, int, str], None]  # (dictation seq, characters to delete, text to type)


class Dictation:
    """Runs one dictation's live loop on its own thread; everything it learns goes out through
    callbacks that the controller turns into queue messages (`post_event`, `output`, `on_done`)."""

    def __init__(self, seq: int, lease: MicLease, worker, cfg: Config, options: TranscribeOptions, *,
                 output: Output, post_event: Callable[[str, dict], None],
                 on_done: Callable[[DictationResult], None], store: Callable[["Dictation", DictationResult], None],
                 trailing_space: bool = False, punctuator: Any = None) -> None:
        self.seq = seq
        self.id = uuid.uuid4().hex[:12]
        self.lease = lease
        self.worker = worker
        self.cfg = cfg
        self.options = options
        self._output = output
        self._post = post_event
        self._on_done = on_done
        self._store = store
        self.trailing_space = trailing_space
        self.typed: list[str] = []
        # Personal punctuation (config punctuation.apply_live): a LivePunctuator. Typed text is never
        # re-punctuated, so an utterance's words wait until it closes (a pause) and are typed then.
        self._punctuator = punctuator
        self._held: list[Word] = []
        self.started_at = time.time()
        self.quit = threading.Event()  # stop at once (the app is quitting): no trailing capture
        self._thread = threading.Thread(target=self._run, name=f"dictate-dictation-{seq}", daemon=True)

    def start(self) -> "Dictation":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self.lease.cancel()

    @property
    def listening(self) -> bool:
        """Still taking audio (not stopping, not cancelled)."""
        return not self.lease.stopping and not self.lease.cancelled and self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout_s: float | None = None) -> None:
        self._thread.join(timeout_s)

    def _commit(self, commit: Commit) -> None:
        if self.lease.cancelled:
            raise DictationCancelled()
        if self._punctuator is not None:
            if self._held and commit.words[0].start_s - self._held[-1].end_s >= UTTERANCE_GAP_S:
                self._type(self._punctuated(final=False))  # a pause before these words: the last utterance is over
        if self._punctuator is not None:  # (still: the model may just have failed, and words must not wait for it)
            self._held.extend(commit.words)
            if commit.reason != "agreement":  # the utterance (or a piece closed at a pause) is complete
                self._type(self._punctuated(final=False))
            return
        self._type(commit.text)

    def _punctuated(self, final: bool) -> str:
        """The held words through the punctuator (and, at the end, the last mark). If the model
        fails, the words are typed as the engine wrote them: nothing said is lost."""
        held, self._held = self._held, []
        try:
            text = self._punctuator.add(held) if held else ""
            if final:
                text += self._punctuator.finish()
            return text  # the punctuator spaces its own words and marks
        except Exception:
            log.exception("dictation %s: the punctuation model failed; the engine's text is typed", self.id)
            self._punctuator = None
            return "".join(w.text for w in held)

    def _type(self, text: str) -> None:
        if not self.typed:
            text = text.lstrip()  # the first words of a dictation: no leading space
        if not text:
            return
        self.typed.append(text)
        self._output(self.seq, 0, text)
        self._post("committed", {"text": text})

    def _partial(self, words: list[Word]) -> None:
        if self.lease.cancelled:
            return
        if (self._punctuator is not None and self._held and not words
                and self.lease.samples_out / SAMPLE_RATE_HZ - self._held[-1].end_s >= UTTERANCE_GAP_S):
            # Nothing heard after the held words, and a pause's worth of audio since: the utterance
            # closed without a closing commit (agreement had committed all of it).
            self._type(self._punctuated(final=False))
        self._post("partial", {"text": "".join(w.text for w in words).strip()})

    def _run(self) -> None:
        result = DictationResult(self.seq, self.id, DictationStatus.DONE, "", 0.0, started_at=self.started_at)
        try:
            pipeline = live_transcriber(self.cfg, self.lease, self.worker, options=self.options,
                                        on_commit=self._commit, on_partial=self._partial)
            try:
                result.stats = pipeline.run(self.quit)
            except DictationCancelled:
                result.status = DictationStatus.CANCELLED
            except EngineError as exc:
                # Nothing said is lost: record on until the user stops, keep it all for a retry.
                result.status, result.error = DictationStatus.FAILED, str(exc)
                log.error("dictation %s: %s; recording goes on until stopped", self.id, exc)
                self.lease.capture_rest()
            except AudioDeviceError as exc:  # the mic could not even start recording
                result.device_error = str(exc)
            finally:
                self.lease.finish()  # no-op when the pipeline already gave the mic back
            if self.lease.cancelled:
                result.status = DictationStatus.CANCELLED
            elif self._punctuator is not None:
                self._type(self._punctuated(final=True))  # the last utterance and its mark
            result.device_error = result.device_error or self.lease.device_error
            result.duration_s = self.lease.duration_s
            result.text = "".join(self.typed)
            if result.status == DictationStatus.CANCELLED:
                if result.text:  # what was already typed goes too: cancel leaves nothing behind
                    self._output(self.seq, len(result.text), "")
                result.text = ""
            elif result.text and self.trailing_space:
                self._output(self.seq, 0, " ")
            if result.status != DictationStatus.CANCELLED and (result.text or result.status == DictationStatus.FAILED):
                try:
                    self._store(self, result)
                except DictateError as exc:  # the text was typed; the history is a convenience
                    log.warning("dictation %s: not kept in the history: %s", self.id, exc)
                except Exception:
                    log.exception("dictation %s: not kept in the history", self.id)
        except Exception as exc:  # a bug here must not leave the controller waiting forever
            log.exception("dictation %s failed", self.id)
            result.status, result.error = DictationStatus.FAILED, f"dictation failed: {exc}"
        finally:
            self._output(self.seq, 0, None)  # type: ignore[arg-type]  # None closes this dictation's output
            self._on_done(result)


def history_options(options: TranscribeOptions) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(options).items() if k not in ("extra", "initial_prompt")}
