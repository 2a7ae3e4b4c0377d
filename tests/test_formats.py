import json

from dictate.formats import render
from dictate.types import Segment, Word

SEGMENTS = [
    Segment(0.0, 1.5, " Hello there.", (Word(0.0, 0.6, " Hello", 0.9), Word(0.7, 1.5, " there.", 0.8))),
    Segment(1.5, 1.6, "  "),  # blank: no cue
    Segment(3661.25, 3662.0, " Second one."),
]


def test_txt_joins_segment_text() -> None:
    assert render("txt", SEGMENTS) == "Hello there. Second one.\n"


def test_srt_numbering_and_clock() -> None:
    assert render("srt", SEGMENTS) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n"
        "2\n01:01:01,250 --> 01:01:02,000\nSecond one.\n"
    )


def test_vtt_header_and_clock() -> None:
    out = render("vtt", SEGMENTS)
    assert out.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.\n")
    assert "01:01:01.250 --> 01:01:02.000\nSecond one." in out


def test_json_carries_words_and_metadata() -> None:
    doc = json.loads(render("json", SEGMENTS, {"file": "a.wav"}))
    assert doc["file"] == "a.wav"
    assert doc["text"] == "Hello there. Second one."
    assert doc["segments"][0]["words"][1] == {"start_s": 0.7, "end_s": 1.5, "text": " there.", "probability": 0.8}
