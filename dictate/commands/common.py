"""Options and helpers shared by several verbs."""

from __future__ import annotations

import argparse
import sys

from dictate import config as config_mod
from dictate.config import Config
from dictate.engines import Engine, create_engine
from dictate.types import TranscribeOptions


def add_engine_args(parser: argparse.ArgumentParser, *, beam_default: int | None = None) -> None:
    g = parser.add_argument_group("engine")
    g.add_argument("--engine", help="faster-whisper, whisper.cpp, remote, or module:attribute (default: from config)")
    g.add_argument("--model", help="auto, a stock name (tiny … large-v3-turbo), a CTranslate2 directory or a ggml file")
    g.add_argument("--language", help="language code such as en (default: detect)")
    g.add_argument("--beam-size", type=int, default=beam_default, metavar="N", help="beam size (1: greedy)")
    g.add_argument("--threads", type=int, help="CPU threads for inference (0: all cores)")
    g.add_argument("--base-url", help="remote engine: OpenAI-compatible server up to /v1 (default: from config)")
    g.add_argument("--max-new-tokens", type=int, help=argparse.SUPPRESS)  # bounds decoding (tests, benchmarks)


def load_config(args: argparse.Namespace) -> Config:
    cfg = config_mod.load()
    if getattr(args, "threads", None) is not None:
        cfg.engine.threads = args.threads
    if getattr(args, "base_url", None):
        cfg.remote.base_url = args.base_url
    return cfg


def engine_name(args: argparse.Namespace, cfg: Config) -> str:
    return getattr(args, "engine", None) or cfg.engine.name


def engine_chain(args: argparse.Namespace, cfg: Config) -> list[str]:
    """The engines to try in order. An explicit --engine means that engine only (a local engine
    asked for on the command line never falls back to a server). Otherwise [engine] fallback is
    the order when it names [engine] name; when it does not, name comes first."""
    explicit = getattr(args, "engine", None)
    if explicit or not cfg.engine.fallback:
        return [explicit or cfg.engine.name]
    names = list(cfg.engine.fallback)
    if cfg.engine.name not in names:
        names.insert(0, cfg.engine.name)
    return list(dict.fromkeys(names))  # without repeats, in order


def make_engine(args: argparse.Namespace, cfg: Config, notice=None) -> Engine:
    """The engine the verb should use; a FallbackEngine when [engine] fallback lists several.
    `notice` (one-line message) is called once when the chain moves on; the warning is logged anyway."""
    model = getattr(args, "model", None)
    chain = engine_chain(args, cfg)
    if len(chain) == 1:
        return create_engine(chain[0], cfg, model=model)
    from dictate.engines.fallback import Candidate, FallbackEngine

    def factory(name: str):
        # --model names a local model in a chain; the server keeps its own [remote] model.
        return lambda: create_engine(name, cfg, model=None if name == "remote" else model)

    return FallbackEngine([Candidate(name, factory(name)) for name in chain], notice=notice)


def base_options(args: argparse.Namespace, cfg: Config, **overrides) -> TranscribeOptions:
    fields = dict(
        language=getattr(args, "language", None) or cfg.engine.language or None,
        hotwords=tuple(cfg.engine.hotwords),
        max_new_tokens=getattr(args, "max_new_tokens", None),
    )
    if getattr(args, "max_new_tokens", None):
        # Bounded decoding is for tests and benchmarks: no temperature fallback either.
        fields["temperature"] = 0.0
    fields.update(overrides)
    return TranscribeOptions(**fields)


def err(message: str) -> None:
    """A user-facing message on stderr (stdout carries transcripts only)."""
    sys.stderr.write(f"dictate: {message}\n")
    sys.stderr.flush()
