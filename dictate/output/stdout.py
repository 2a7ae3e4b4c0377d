"""Committed text to a stream (standard output by default): for `dictate listen`-style use,
scripts, and desktops where nothing can type."""

from __future__ import annotations

import sys
from typing import TextIO


class StreamSink:
    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def emit(self, delete_chars: int, text: str) -> None:
        stream = self.stream or sys.stdout
        if delete_chars > 0 and stream.isatty():
            stream.write("\b \b" * delete_chars)  # a terminal can take a correction back
        if text:
            stream.write(text)
        stream.flush()

    def close(self) -> None:
        stream = self.stream or sys.stdout
        stream.flush()
