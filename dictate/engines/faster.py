"""faster-whisper backend (CTranslate2): the default engine."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np
from numpy.typing import NDArray

from dictate.engines import check_audio
from dictate.engines.models import ModelFormat, resolve
from dictate.errors import EngineError, ModelError
from dictate.types import SAMPLE_RATE_HZ, Segment, TranscribeOptions, Word

log = logging.getLogger(__name__)

WINDOW_S = 30.0


def pick_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except Exception:
        return "cpu"


def pick_compute_type(device: str, compute_type: str) -> str:
    if compute_type != "auto":
        return compute_type
    # int8 on CPU is ~2x faster than float32 at the same accuracy; float16 is native on GPUs.
    return "float16" if device == "cuda" else "int8"


class FasterWhisperEngine:
    name = "faster-whisper"

    def __init__(self, model: str | Path = "auto", *, device: str = "auto", compute_type: str = "auto",
                 threads: int = 0, allow_download: bool = True) -> None:
        from faster_whisper import WhisperModel

        self.model_path = resolve(str(model), ModelFormat.CT2, allow_download=allow_download)
        self.device = pick_device(device)
        self.compute_type = pick_compute_type(self.device, compute_type)
        self._threads = threads
        if self.device == "cuda":
            from dictate.engines import cuda

            cuda.preload()  # NVIDIA's pip wheels of cuBLAS/cuDNN, which the loader does not search
        try:
            self._model = WhisperModel(str(self.model_path), device=self.device, compute_type=self.compute_type,
                                       cpu_threads=threads, local_files_only=True)
        except (RuntimeError, ValueError, OSError) as exc:
            if self.device != "cuda" or not _is_cuda_failure(exc):
                raise ModelError(f"cannot load faster-whisper model {self.model_path}: {exc}") from exc
            self._fall_back_to_cpu(exc)
        self._batched = None
        self._single_pass_ok = True
        log.info("faster-whisper: %s on %s/%s", self.model_path, self.device, self.compute_type)

    def _fall_back_to_cpu(self, exc: BaseException) -> None:
        """CUDA is asked for but broken (no driver, a missing cuBLAS): the CPU in int8, with one line."""
        from faster_whisper import WhisperModel

        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("CUDA is not usable (%s); using the CPU (int8) instead; `dictate doctor` says what is missing",
                    reason)
        self.device, self.compute_type = "cpu", "int8"
        self._batched = None
        try:
            self._model = WhisperModel(str(self.model_path), device="cpu", compute_type="int8",
                                       cpu_threads=self._threads, local_files_only=True)
        except (RuntimeError, ValueError, OSError) as cpu_exc:
            raise ModelError(f"cannot load faster-whisper model {self.model_path}: {cpu_exc}") from cpu_exc

    def transcribe(self, audio: NDArray[np.float32], options: TranscribeOptions) -> list[Segment]:
        return list(self.transcribe_iter(audio, options))

    def transcribe_iter(self, audio: NDArray[np.float32], options: TranscribeOptions) -> Iterator[Segment]:
        audio = check_audio(audio)
        if audio.size == 0:
            return
        kwargs = self._kwargs(options)
        batched = options.batch_size > 1 and audio.size > WINDOW_S * SAMPLE_RATE_HZ
        yielded = False
        try:
            for seg in self._segments(audio, options, kwargs, batched):
                yielded = True
                yield seg
        except (RuntimeError, ValueError) as exc:
            # cuBLAS is loaded at the first matrix product, so a missing one shows up here.
            if self.device != "cuda" or yielded or not _is_cuda_failure(exc):
                raise EngineError(f"faster-whisper failed: {exc}") from exc
            self._fall_back_to_cpu(exc)
            try:
                yield from self._segments(audio, options, kwargs, batched)
            except (RuntimeError, ValueError) as cpu_exc:
                raise EngineError(f"faster-whisper failed: {cpu_exc}") from cpu_exc

    def _segments(self, audio: NDArray[np.float32], options: TranscribeOptions, kwargs: dict,
                  batched: bool) -> Iterator[Segment]:
        if options.single_pass and not batched and self._single_pass_ok and audio.size < WINDOW_S * SAMPLE_RATE_HZ:
            try:
                segments = self._single_pass(audio, kwargs, options.encoder_pad_s)
            except (AttributeError, TypeError) as exc:  # faster-whisper's internals moved
                log.warning("faster-whisper: one-pass decoding is not available in this version (%s); "
                            "using transcribe()", exc)
                self._single_pass_ok = False
            else:
                yield from segments
                return
        if batched:
            segments, _info = self._pipeline().transcribe(audio, batch_size=options.batch_size,
                                                          clip_timestamps=self._clips(audio, options), **kwargs)
        else:
            segments, _info = self._model.transcribe(audio, **kwargs)
        duration = audio.size / SAMPLE_RATE_HZ
        for seg in segments:  # a lazy generator: decoding happens as we iterate
            yield _convert(seg).clamped(duration)

    def _single_pass(self, audio: NDArray[np.float32], kwargs: dict, pad_s: float | None) -> list[Segment]:
        """One encoder and one decoder pass over a window under 30 s. WhisperModel.transcribe()
        with word timestamps seeks back to the last word's end and decodes what follows it once
        more, encoder included: measured 0.97 s instead of 0.56 s on a 3.6 s live window. The steps
        are faster-whisper's own (prompt, fallback, segment split, word alignment), run once.
        `pad_s` shortens the encoder's input to the window plus that much silence."""
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer

        m = self._model
        lazy, info = m.transcribe(audio, **kwargs)  # its options (and language); nothing decoded yet
        lazy.close()
        opts = info.transcription_options
        tokenizer = Tokenizer(m.hf_tokenizer, m.model.is_multilingual, task=kwargs["task"], language=info.language)
        features = m.feature_extractor(audio)
        fe = m.feature_extractor
        frames = min(fe.nb_max_frames, features.shape[-1] - 1)
        length = (fe.nb_max_frames if pad_s is None
                  else min(fe.nb_max_frames, frames + round(pad_s / fe.time_per_frame)))
        encoder_output = m.encode(pad_or_trim(features[:, :frames], length))
        previous = (tokenizer.encode(" " + opts.initial_prompt.strip()) if isinstance(opts.initial_prompt, str)
                    else list(opts.initial_prompt or []))
        prompt = m.get_prompt(tokenizer, previous, without_timestamps=opts.without_timestamps, prefix=opts.prefix,
                              hotwords=opts.hotwords)
        result, avg_logprob, _temperature, ratio = m.generate_with_fallback(encoder_output, prompt, tokenizer, opts)
        if (opts.no_speech_threshold is not None and result.no_speech_prob > opts.no_speech_threshold
                and not (opts.log_prob_threshold is not None and avg_logprob > opts.log_prob_threshold)):
            return []  # transcribe() skips such a window too
        window_s = frames * fe.time_per_frame
        current, _seek, _single = m._split_segments_by_timestamps(
            tokenizer=tokenizer, tokens=result.sequences_ids[0], time_offset=0.0, segment_size=frames,
            segment_duration=window_s, seek=0)
        if opts.word_timestamps:
            m.add_word_timestamps([current], tokenizer, encoder_output, frames, opts.prepend_punctuations,
                                  opts.append_punctuations, last_speech_timestamp=0.0)
        out = []
        for seg in current:
            text = tokenizer.decode(seg["tokens"])
            if seg["start"] == seg["end"] or not text.strip():
                continue
            words = tuple(Word(float(w["start"]), float(w["end"]), w["word"], float(w["probability"]))
                          for w in seg.get("words") or ())
            out.append(Segment(start_s=float(seg["start"]), end_s=float(seg["end"]), text=text, words=words,
                               no_speech_prob=float(result.no_speech_prob), avg_logprob=float(avg_logprob),
                               compression_ratio=float(ratio)).clamped(audio.size / SAMPLE_RATE_HZ))
        return out

    def _pipeline(self):
        if self._batched is None:
            from faster_whisper import BatchedInferencePipeline

            self._batched = BatchedInferencePipeline(self._model)
        return self._batched

    @staticmethod
    def _clips(audio: NDArray[np.float32], options: TranscribeOptions) -> list[dict] | None:
        """The batched pipeline needs windows: VAD finds them when asked, else fixed 30 s clips."""
        if options.vad_filter:
            return None
        total_s = audio.size / SAMPLE_RATE_HZ
        starts = np.arange(0.0, total_s, WINDOW_S)
        return [{"start": float(s), "end": float(min(s + WINDOW_S, total_s))} for s in starts]

    @staticmethod
    def _kwargs(options: TranscribeOptions) -> dict:
        kwargs = dict(
            language=options.language or None,
            task=options.task,
            beam_size=options.beam_size,
            temperature=options.temperature,
            initial_prompt=options.initial_prompt or None,
            hotwords=" ".join(options.hotwords) or None,
            word_timestamps=options.word_timestamps,
            vad_filter=options.vad_filter,
            max_new_tokens=options.max_new_tokens,
        )
        kwargs.update(options.extra)
        return kwargs


def _is_cuda_failure(exc: BaseException) -> bool:
    """CTranslate2's errors when CUDA is missing or broken (driver, device, cuBLAS/cuDNN libraries)."""
    text = str(exc).lower()
    return any(k in text for k in ("cuda", "cublas", "cudnn", "libcu", "gpu"))


def _convert(seg) -> Segment:
    words = tuple(Word(float(w.start), float(w.end), w.word, float(w.probability)) for w in (seg.words or ()))
    return Segment(
        start_s=float(seg.start), end_s=float(seg.end), text=seg.text, words=words,
        no_speech_prob=float(seg.no_speech_prob), avg_logprob=float(seg.avg_logprob),
        compression_ratio=float(seg.compression_ratio),
    )
