"""Parsing punctuated text into words and marks, and reading the user's writing from real files
of every supported kind (text, Markdown, HTML, .eml, mbox), including the bad ones."""

from __future__ import annotations

import mailbox
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dictate.punctuation import PunctuationError, read_corpus
from dictate.punctuation.text import CLASS_NAMES, parse, render, strip_marks


def _names(text: str) -> list[str]:
    return [CLASS_NAMES[lab] for lab in parse(text).labels]


def test_parse_finds_each_mark_after_its_word() -> None:
    p = parse("Well, I like apples, pears, and plums; do you? Wow! Note: this—I think—works...")
    assert p.words == ["Well", "I", "like", "apples", "pears", "and", "plums", "do", "you", "Wow", "Note", "this",
                       "I", "think", "works"]
    assert _names("Well, I like apples, pears, and plums; do you? Wow! Note: this—I think—works...") == [
        "comma", "none", "none", "comma", "comma", "none", "semicolon", "none", "question", "exclamation", "colon",
        "dash", "none", "dash", "ellipsis"]


def test_parse_keeps_abbreviations_numbers_quotes_and_brackets_with_their_words() -> None:
    p = parse('Dr. Smith paid 3.5 dollars in the U.S. (really), he said "no."')
    assert p.words == ["Dr.", "Smith", "paid", "3.5", "dollars", "in", "the", "U.S.", "(really)", "he", "said", '"no"']
    assert [CLASS_NAMES[x] for x in p.labels][-4:] == ["comma", "none", "none", "period"]
    assert p.keys[3] == "0.0"  # digits are folded for the features


def test_spaced_and_closed_dashes_and_ellipsis_forms_are_recorded() -> None:
    assert parse("it was — I think — fine").dash_forms == [" — ", " — "]
    assert parse("it was - I think - fine").labels[1] == CLASS_NAMES.index("dash")
    assert parse("it was—fine").dash_forms == ["—"]
    assert parse("wait… what").ellipsis_forms == ["…"]


def test_render_writes_marks_back() -> None:
    text = "Hello, world. The project—which took months—launched; we cheered... Did it work?"
    p = parse(text)
    assert render(p.words, p.labels, ("", ",", ".", "?", "!", ":", ";", "—", "...")) == text


_word = st.text(alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd")), min_size=1, max_size=8)
_mark = st.sampled_from(["", ",", ".", "?", "!", ":", ";", "—", "...", " -", '"', ")"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_word, _mark), min_size=1, max_size=30))
def test_strip_marks_keeps_every_word_in_order(pairs: list[tuple[str, str]]) -> None:
    text = " ".join(w + m for w, m in pairs)
    words = strip_marks(text).split()
    assert [w.lower() for w, _ in pairs] == [w.strip('")') for w in words]


# -- reading files ---------------------------------------------------------------------------

PROSE = ("I wrote this myself, and I punctuate it my way. Lists of apples, pears, and plums get a serial "
         "comma; asides—like this one—get dashes.")


def test_plain_text_wrapped_and_one_per_line(tmp_path: Path) -> None:
    wrapped = tmp_path / "wrapped.txt"
    wrapped.write_text("Title\n\nI wrote this myself, and I punctuate\nit my way. It is long enough.\n\n"
                       "A second paragraph follows here, also mine.\n", encoding="utf-8")
    corpus = read_corpus([wrapped])
    assert corpus.paragraphs == ["I wrote this myself, and I punctuate it my way. It is long enough.",
                                 "A second paragraph follows here, also mine."]  # the title is not prose
    lines = tmp_path / "lines.txt"
    lines.write_text("First paragraph on one line, quite long.\nSecond one, also a sentence.\n", encoding="utf-8")
    assert read_corpus([lines]).paragraphs == ["First paragraph on one line, quite long.",
                                               "Second one, also a sentence."]


def test_markdown_drops_code_headings_and_markup(tmp_path: Path) -> None:
    md = tmp_path / "notes.md"
    md.write_text(f"# Heading\n\n{PROSE.replace('myself', '**myself**')} See [the docs](http://x.invalid).\n\n"
                  "```python\nprint('code, not prose.')\n```\n\n    indented code line.\n\n"
                  "- A list item is a paragraph of its own.\n- So is this second item here.\n", encoding="utf-8")
    paras = read_corpus([md]).paragraphs
    assert paras[0] == PROSE + " See the docs."
    assert "A list item is a paragraph of its own." in paras and "So is this second item here." in paras
    assert not any("print" in p or "Heading" in p or "indented" in p for p in paras)


def test_html_takes_paragraph_text_only(tmp_path: Path) -> None:
    page = tmp_path / "post.html"
    page.write_text(f"<!doctype html><html><head><title>T</title><style>p{{}}</style></head><body>"
                    f"<h1>Big title</h1><p>{PROSE.replace('myself', '<em>myself</em>')}</p>"
                    f"<script>var a = 1;</script><p>Second &amp; last paragraph, with an entity.</p>"
                    f"<pre>code, not prose.</pre></body></html>", encoding="utf-8")
    assert read_corpus([page]).paragraphs == [PROSE, "Second & last paragraph, with an entity."]


def _message(body: str, subject: str = "Hi") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "me@example.invalid"
    msg["To"] = "you@example.invalid"
    msg["Subject"] = subject
    msg.set_content(body)
    return msg


def test_email_keeps_own_text_not_quotes_or_signature(tmp_path: Path) -> None:
    body = (f"{PROSE}\n\nOn Mon, 1 Jan 2024, You <you@example.invalid> wrote:\n> Your quoted text, not mine.\n"
            f"> More of it here.\n")
    eml = tmp_path / "reply.eml"
    eml.write_bytes(_message(body + "\n-- \nMe, my signature\n").as_bytes())
    assert read_corpus([eml]).paragraphs == [PROSE]

    html_only = EmailMessage()
    html_only["Subject"] = "html"
    html_only.set_content(f"<p>{PROSE}</p>", subtype="html")
    (tmp_path / "html.eml").write_bytes(html_only.as_bytes())
    assert read_corpus([tmp_path / "html.eml"]).paragraphs == [PROSE]


def test_mbox_reads_every_message(tmp_path: Path) -> None:
    path = tmp_path / "Sent.mbox"
    box = mailbox.mbox(str(path))
    for i in range(3):
        box.add(_message(f"Message number {i}, written by me, ends here."))
    box.flush()
    box.close()
    assert read_corpus([path]).paragraphs == [f"Message number {i}, written by me, ends here." for i in range(3)]


def test_folder_walk_skips_binaries_and_bad_text_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.txt").write_text(PROSE, encoding="utf-8")
    (tmp_path / "sub" / "b.md").write_text(PROSE, encoding="utf-8")
    (tmp_path / "sub" / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")  # not a text suffix: ignored
    (tmp_path / "binary.txt").write_bytes(b"abc\x00\x01\x02")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait, tr\xe8s bien.".encode("latin-1"))
    corpus = read_corpus([tmp_path])
    assert corpus.paragraphs == [PROSE, PROSE]
    assert corpus.files == 2
    assert len(corpus.skipped) == 2
    assert any("binary" in s for s in corpus.skipped) and any("not UTF-8" in s for s in corpus.skipped)


@pytest.mark.parametrize("content, message", [
    (b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary"),
    ("caf\xe9".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 3)"),
])
def test_named_bad_file_is_a_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(PunctuationError) as exc:
        read_corpus([path])
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PunctuationError, match="no such file or folder"):
        read_corpus([tmp_path / "nope"])
