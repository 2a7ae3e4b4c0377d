"""Writing files so that a crash or a full disk never leaves half a file under the final name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable


def write_atomic(path: Path, content: str | bytes | Callable[[BinaryIO], None], *, durable: bool = True) -> Path:
    """Write to `path.part`, flush (and fsync when `durable`), then rename over `path`.
    Raises OSError with the partial file removed; callers turn it into their own one-line error."""
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
