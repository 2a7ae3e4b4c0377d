"""Shared fixtures: every test runs with its own config/data/cache/log/state folders and an
empty Hugging Face cache, so nothing touches the user's files or the network."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tests.support.whisper_models import MICRO, cached_ct2_model, cached_ggml_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path_factory.mktemp("dictate-home")
    for name in ("CONFIG", "DATA", "CACHE", "LOG", "STATE"):
        monkeypatch.setenv(f"DICTATE_{name}_DIR", str(root / name.lower()))
    monkeypatch.setenv("HF_HUB_CACHE", str(root / "hf-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    return root


@pytest.fixture(autouse=True)
def _drop_cli_log_handlers():
    """cli.main() in-process adds stderr and log-file handlers to the root logger; remove them
    so one test's log file (in its own temp folder) is not held open into the next."""
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_dictate", False)]:
        root.removeHandler(handler)
        handler.close()


@pytest.fixture(scope="session")
def ct2_model() -> Path:
    """A random-weight CTranslate2 Whisper model (micro dimensions) that faster-whisper loads."""
    return cached_ct2_model(MICRO)


@pytest.fixture(scope="session")
def ggml_model() -> Path:
    """A random-weight ggml Whisper model (micro dimensions) that whisper.cpp loads."""
    return cached_ggml_model(MICRO)


def dictate_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for running `python -m dictate` in a subprocess from the repo root."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env
