"""whisper.cpp backend through pywhispercpp (its wheel bundles whisper.cpp)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from dictate.engines import check_audio
from dictate.engines.models import ModelFormat, resolve
from dictate.errors import EngineError, ModelError
from dictate.types import SAMPLE_RATE_HZ, Segment, TranscribeOptions, Word

log = logging.getLogger(__name__)

_CENTISECONDS = 0.01  # whisper.cpp reports times in units of 10 ms


class WhisperCppEngine:
    name = "whisper.cpp"
    # Live windows get no text prompt: under one, whisper.cpp's token times drift by up to a second
    # and it skips words the prompt holds (measured on real tiny.en weights).
    live_prompt = False

    def __init__(self, model: str | Path = "auto", *, threads: int = 0, allow_download: bool = True) -> None:
        import _pywhispercpp as pw
        from pywhispercpp.model import Model

        self._pw = pw
        self.model_path = resolve(str(model), ModelFormat.GGML, allow_download=allow_download)
        self.threads = threads or min(8, os.cpu_count() or 1)
        try:
            # redirect_whispercpp_logs_to=None keeps whisper.cpp's chatter off the user's terminal.
            self._model = Model(str(self.model_path), n_threads=self.threads, redirect_whispercpp_logs_to=None,
                                print_progress=False, print_realtime=False, print_timestamps=False)
        except Exception as exc:
            raise ModelError(f"cannot load whisper.cpp model {self.model_path}: {exc}") from exc
        if getattr(self._model, "_ctx", None) is None:
            raise ModelError(f"cannot load whisper.cpp model {self.model_path}: whisper.cpp rejected the file")
        # whisper.cpp's params object is shared state: one transcription at a time.
        self._lock = threading.Lock()
        log.info("whisper.cpp: %s with %d threads", self.model_path, self.threads)

    def transcribe(self, audio: NDArray[np.float32], options: TranscribeOptions) -> list[Segment]:
        audio = check_audio(audio)
        if audio.size == 0:
            return []
        with self._lock:
            self._configure(options)
            try:
                self._model.transcribe(audio)
            except Exception as exc:
                raise EngineError(f"whisper.cpp failed: {exc}") from exc
            duration = audio.size / SAMPLE_RATE_HZ
            return [seg.clamped(duration) for seg in self._segments(options.word_timestamps)]

    def _configure(self, options: TranscribeOptions) -> None:
        pw = self._pw
        params = self._model._params
        temps = options.temperature if isinstance(options.temperature, tuple) else (options.temperature,)
        beam = options.beam_size > 1
        params.strategy = (pw.whisper_sampling_strategy.WHISPER_SAMPLING_BEAM_SEARCH if beam
                           else pw.whisper_sampling_strategy.WHISPER_SAMPLING_GREEDY)
        params.beam_search = {"beam_size": options.beam_size if beam else -1, "patience": -1.0}
        params.language = options.language or ""  # empty: detect ("auto" also works but logs a warning)
        params.translate = options.task == "translate"
        prompt = " ".join(filter(None, [options.initial_prompt, ", ".join(options.hotwords)]))
        params.initial_prompt = prompt
        params.token_timestamps = True  # cheap, and segment times get finer too
        params.temperature = float(temps[0])
        params.temperature_inc = float(temps[1] - temps[0]) if len(temps) > 1 else 0.0
        params.max_tokens = int(options.max_new_tokens or 0)
        params.no_context = True  # each call is independent: context comes only through the prompt
        for key, value in options.extra.items():
            setattr(params, key, value)

    def _segments(self, with_words: bool) -> list[Segment]:
        pw, ctx = self._pw, self._model._ctx
        eot = pw.whisper_token_eot(ctx)
        out: list[Segment] = []
        for i in range(pw.whisper_full_n_segments(ctx)):
            text = _text(pw.whisper_full_get_segment_text, ctx, i)
            t0 = pw.whisper_full_get_segment_t0(ctx, i) * _CENTISECONDS
            t1 = pw.whisper_full_get_segment_t1(ctx, i) * _CENTISECONDS
            tokens = []
            logprob_sum = 0.0
            for j in range(pw.whisper_full_n_tokens(ctx, i)):
                data = pw.whisper_full_get_token_data(ctx, i, j)
                if data.id >= eot:  # special and timestamp tokens
                    continue
                logprob_sum += float(data.plog)
                tokens.append((_text(pw.whisper_full_get_token_text, ctx, i, j), data))
            words = _words(tokens) if with_words else ()
            out.append(Segment(start_s=t0, end_s=t1, text=text, words=words,
                               avg_logprob=logprob_sum / len(tokens) if tokens else None))
        return out


def _text(getter, *args) -> str:
    """A segment's or token's text. Byte-level tokens can split a UTF-8 character, and then the
    binding's own decoding fails: decode its bytes leniently instead."""
    try:
        raw = getter(*args)
    except UnicodeDecodeError as exc:
        raw = exc.object
    return bytes(raw).decode("utf-8", errors="replace") if isinstance(raw, (bytes, bytearray)) else raw


def _words(tokens: list) -> tuple[Word, ...]:
    """Join sub-word tokens into words: a token that starts with a space starts a new word."""
    words: list[Word] = []
    text, start, end, probs = "", 0.0, 0.0, []
    for piece, data in tokens:
        if isinstance(piece, bytes):
            piece = piece.decode("utf-8", errors="replace")
        if piece.startswith(" ") and text.strip():
            words.append(Word(start, end, text, float(np.mean(probs))))
            text, probs = "", []
        if not text:
            start = data.t0 * _CENTISECONDS
        text += piece
        end = max(data.t1 * _CENTISECONDS, start)
        probs.append(float(data.p))
    if text.strip():
        words.append(Word(start, end, text, float(np.mean(probs))))
    return tuple(words)
