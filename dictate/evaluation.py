"""`dictate eval DIR --model A --model B`: word and character error rates of several models on the
same held-out recordings, with the real-time factor and the worst files.

DIR holds pairs NAME.<audio> + NAME.txt (the export layout: with DIR/validation in it, that split
is used unless another is asked for). Text is compared after dictate.textnorm's normalisation,
stated in the report; jiwer does the alignment. Errors are summed over the whole set (corpus WER:
total substitutions + deletions + insertions over total reference words), not averaged by file.

Decoding is deterministic (temperature 0, no sampling fallback), so the same models on the same
files give the same table. Each model runs in a child process of its own: faster-whisper and
whisper.cpp each bring an OpenMP runtime, and in one process they slow each other down (whisper.cpp
~3x here), which would make the real-time factors lie.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import jiwer

from dictate.config import Config
from dictate.errors import DictateError
from dictate.textnorm import DESCRIPTION as NORMALISATION
from dictate.textnorm import normalize
from dictate.types import SAMPLE_RATE_HZ, TranscribeOptions

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".webm", ".mp4")


class EvalError(DictateError):
    """The evaluation set or a model could not be used."""


@dataclass(frozen=True)
class EvalItem:
    name: str
    audio: Path
    reference: str


def load_items(folder: Path, split: str | None = None) -> tuple[Path, list[EvalItem]]:
    """(the folder used, its pairs sorted by name). Audio without a .txt beside it is ignored."""
    folder = Path(folder)
    if split:
        folder = folder / split
    elif (folder / "validation").is_dir():
        folder = folder / "validation"  # held-out audio: what a fine-tuned model did not train on
    if not folder.is_dir():
        raise EvalError(f"{folder}: no such folder")
    items = []
    for audio in sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()):
        txt = audio.with_suffix(".txt")
        if not txt.is_file():
            continue
        ref = txt.read_text(encoding="utf-8").strip()
        if not normalize(ref):
            log.warning("eval: %s has no words in its text; left out", txt)
            continue
        items.append(EvalItem(audio.stem, audio, ref))
    if not items:
        raise EvalError(f"{folder} has no pairs of audio and NAME.txt to evaluate on")
    return folder, items


@dataclass(frozen=True)
class Errors:
    """Word (and character) errors of hypotheses against references, after normalisation."""

    wer: float
    cer: float
    substitutions: int
    deletions: int
    insertions: int
    reference_words: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions


def score(references: list[str], hypotheses: list[str]) -> Errors:
    refs = [normalize(r) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    if not any(refs):
        raise EvalError("no reference words to score against")
    words = jiwer.process_words(refs, hyps)
    chars = jiwer.process_characters(refs, hyps)
    n = sum(len(r.split()) for r in refs)
    return Errors(wer=(words.substitutions + words.deletions + words.insertions) / n, cer=float(chars.cer),
                  substitutions=words.substitutions, deletions=words.deletions, insertions=words.insertions,
                  reference_words=n)


@dataclass(frozen=True)
class ModelSpec:
    label: str  # as given on the command line
    engine: str
    model: str


def model_spec(value: str, default_engine: str) -> ModelSpec:
    """`--model` value -> which engine runs it: `ENGINE=MODEL` says so; a registered model, a ggml
    or gguf file and a CTranslate2 folder say it themselves; a stock name takes --engine."""
    from dictate.engines import BUILTIN_ENGINES
    from dictate.engines.models import is_ct2_dir, is_ggml_file
    from dictate.engines.user_models import GGUF_MAGIC, lookup

    engine, sep, model = value.partition("=")
    if sep and engine in BUILTIN_ENGINES:
        return ModelSpec(value, engine, model)
    mine = lookup(value)
    if mine is not None:
        return ModelSpec(value, mine.engine, value)
    path = Path(value).expanduser()
    if path.is_file() and (is_ggml_file(path) or _head(path) == GGUF_MAGIC):
        return ModelSpec(value, "whisper.cpp", str(path))
    if is_ct2_dir(path):
        return ModelSpec(value, "faster-whisper", str(path))
    return ModelSpec(value, default_engine, value)


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(4)
    except OSError:
        return b""


@dataclass
class FileResult:
    name: str
    audio_s: float
    transcribe_s: float
    reference: str
    hypothesis: str
    errors: Errors


@dataclass
class ModelResult:
    label: str
    engine: str
    model: str  # the path it resolved to
    load_s: float
    audio_s: float
    transcribe_s: float
    errors: Errors
    files: list[FileResult] = field(default_factory=list)

    @property
    def rtf(self) -> float:
        """Seconds of computing per second of audio (below 1: faster than real time)."""
        return self.transcribe_s / self.audio_s if self.audio_s else 0.0

    def worst(self, n: int) -> list[FileResult]:
        return sorted(self.files, key=lambda f: (-f.errors.errors, -f.errors.wer, f.name))[:n]


def eval_options(cfg: Config, *, language: str | None = None, beam_size: int = 5,
                 max_new_tokens: int | None = None) -> TranscribeOptions:
    return TranscribeOptions(language=language or cfg.engine.language or None, beam_size=beam_size,
                             temperature=0.0, max_new_tokens=max_new_tokens)


def evaluate_model(cfg: Config, spec: ModelSpec, items: list[EvalItem], options: TranscribeOptions,
                   engine: Any = None) -> ModelResult:
    """Transcribe every item with one model (loaded here unless `engine` is given) and score it."""
    from dictate.audio.files import decode
    from dictate.engines import create_engine

    start = time.perf_counter()
    if engine is None:
        engine = create_engine(spec.engine, cfg, model=spec.model, allow_download=False)
    load_s = time.perf_counter() - start
    files = []
    for item in items:
        audio = decode(item.audio)
        t0 = time.perf_counter()
        hyp = " ".join(s.text.strip() for s in engine.transcribe(audio, options)).strip()
        took = time.perf_counter() - t0
        files.append(FileResult(item.name, audio.size / SAMPLE_RATE_HZ, took, item.reference, hyp,
                                score([item.reference], [hyp])))
    total = score([f.reference for f in files], [f.hypothesis for f in files])
    return ModelResult(spec.label, spec.engine, str(getattr(engine, "model_path", spec.model)), load_s,
                       sum(f.audio_s for f in files), sum(f.transcribe_s for f in files), total, files)


def _child(cfg: Config, spec: ModelSpec, items: list[EvalItem], options: TranscribeOptions) -> ModelResult:
    import logging as _logging

    _logging.basicConfig(level=_logging.WARNING)
    return evaluate_model(cfg, spec, items, options)


def run_eval(cfg: Config, specs: list[ModelSpec], items: list[EvalItem], options: TranscribeOptions, *,
             isolate: bool = True, on_model: Callable[[ModelResult], None] | None = None) -> list[ModelResult]:
    """Every model on every item, one after the other (each in its own process when `isolate`)."""
    results = []
    for spec in specs:
        if isolate:
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                try:
                    result = pool.submit(_child, cfg, spec, items, options).result()
                except DictateError:
                    raise
                except Exception as exc:  # the child died (out of memory, a crash in the engine)
                    raise EvalError(f"model {spec.label}: the evaluation failed: {exc}") from None
        else:
            result = evaluate_model(cfg, spec, items, options)
        results.append(result)
        if on_model:
            on_model(result)
    return results


def report_json(folder: Path, options: TranscribeOptions, results: list[ModelResult]) -> dict[str, Any]:
    opts = {k: v for k, v in dataclasses.asdict(options).items() if k != "extra"}
    return {
        "dataset": str(folder), "normalisation": NORMALISATION, "options": opts, "files": len(results[0].files)
        if results else 0,
        "models": [{
            "label": r.label, "engine": r.engine, "model": r.model, "load_s": round(r.load_s, 3),
            "audio_s": round(r.audio_s, 3), "transcribe_s": round(r.transcribe_s, 3), "rtf": round(r.rtf, 4),
            **asdict(r.errors),
            "files": [{"name": f.name, "audio_s": round(f.audio_s, 3), "transcribe_s": round(f.transcribe_s, 3),
                       "reference": f.reference, "hypothesis": f.hypothesis, **asdict(f.errors)} for f in r.files],
        } for r in results],
    }
