"""What every output backend shares: the sink protocol, the backend choice record, text splitting
and small helpers for running the typing tools.

Sinks type exactly the text they are given: the caller decides about spaces (the dictation adds
the trailing space) and `delete_chars` counts code points, one BackSpace each."""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence

from dictate.errors import OutputError

log = logging.getLogger(__name__)


class OutputSink(Protocol):
    """Receives committed text. `emit` may block (it runs on the controller's output thread)."""

    def emit(self, delete_chars: int, text: str) -> None:
        """Send `delete_chars` BackSpaces, then type `text`."""

    def close(self) -> None:
        """Release tools, threads and the clipboard; emit is not called afterwards."""


@dataclass(frozen=True)
class BackendChoice:
    name: str  # xdotool, clipboard, wtype, ydotool, dotool, windows, macos, stdout
    reason: str  # one line: why this backend, or what to install
    available: bool


def is_typeable_ascii(ch: str) -> bool:
    """Characters `xdotool type --delay 0` delivers reliably (it drops the non-ASCII ones)."""
    return ch in "\n\t" or " " <= ch <= "~"


def split_runs(text: str) -> list[tuple[bool, str]]:
    """`text` cut into maximal runs of (is_ascii, run), in order."""
    runs: list[tuple[bool, str]] = []
    for ch in text:
        ascii_ = is_typeable_ascii(ch)
        if runs and runs[-1][0] == ascii_:
            runs[-1] = (ascii_, runs[-1][1] + ch)
        else:
            runs.append((ascii_, ch))
    return runs


def utf16_units(text: str) -> list[int]:
    """UTF-16 code units (characters outside the BMP, such as emoji, become surrogate pairs)."""
    data = text.encode("utf-16-le", errors="surrogatepass")
    return [int.from_bytes(data[i:i + 2], "little") for i in range(0, len(data), 2)]


def chunk_utf16(text: str, max_units: int) -> list[str]:
    """`text` cut into pieces of at most `max_units` UTF-16 units, never inside a surrogate pair."""
    pieces: list[str] = []
    current, size = "", 0
    for ch in text:
        n = 2 if ord(ch) > 0xFFFF else 1
        if size + n > max_units and current:
            pieces.append(current)
            current, size = "", 0
        current += ch
        size += n
    if current:
        pieces.append(current)
    return pieces


def require_tool(tool: str, package: str | None = None) -> str:
    path = shutil.which(tool)
    if path is None:
        raise OutputError(f"{tool} not found: install {package or tool} (e.g. apt install {package or tool})")
    return path


def run_tool(argv: Sequence[str], env: Mapping[str, str], *, input_text: str | None = None,
             timeout_s: float = 30.0) -> None:
    """Run a typing tool; its failure becomes a one-line OutputError."""
    try:
        res = subprocess.run(list(argv), env=dict(env), input=input_text, capture_output=True, text=True,
                             timeout=timeout_s)
    except FileNotFoundError as exc:
        raise OutputError(f"{argv[0]} not found: install it") from exc
    except subprocess.TimeoutExpired as exc:
        raise OutputError(f"{argv[0]} did not finish within {timeout_s:.0f} s") from exc
    if res.returncode != 0:
        first = (res.stderr or res.stdout).strip().splitlines()
        raise OutputError(f"{argv[0]} failed: {first[0] if first else f'exit code {res.returncode}'}")
