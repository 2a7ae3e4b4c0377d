"""Transcript file formats: plain text, SubRip, WebVTT and JSON."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Callable, Sequence

from dictate.types import Segment

FORMATS = ("txt", "srt", "vtt", "json")


def _clock(seconds: float, decimal: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{decimal}{ms:03d}"


def _cues(segments: Sequence[Segment]) -> list[Segment]:
    return [s for s in segments if s.text.strip()]


def to_txt(segments: Sequence[Segment], **_: object) -> str:
    return " ".join(s.text.strip() for s in _cues(segments)) + "\n"


def to_srt(segments: Sequence[Segment], **_: object) -> str:
    blocks = [f"{i}\n{_clock(s.start_s, ',')} --> {_clock(s.end_s, ',')}\n{s.text.strip()}\n"
              for i, s in enumerate(_cues(segments), start=1)]
    return "\n".join(blocks)


def to_vtt(segments: Sequence[Segment], **_: object) -> str:
    blocks = [f"{_clock(s.start_s, '.')} --> {_clock(s.end_s, '.')}\n{s.text.strip()}\n" for s in _cues(segments)]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_json(segments: Sequence[Segment], *, metadata: dict | None = None, **_: object) -> str:
    doc = dict(metadata or {})
    doc["text"] = to_txt(segments).strip()
    doc["segments"] = [asdict(s) for s in segments]
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


WRITERS: dict[str, Callable[..., str]] = {"txt": to_txt, "srt": to_srt, "vtt": to_vtt, "json": to_json}


def render(fmt: str, segments: Sequence[Segment], metadata: dict | None = None) -> str:
    return WRITERS[fmt](segments, metadata=metadata)
