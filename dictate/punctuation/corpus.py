"""The user's writing, as paragraphs: plain text, Markdown, HTML, e-mail (.eml) and mbox files or folders.

Only the user's own prose is wanted: code blocks, headings, quoted replies, signatures and markup
are dropped. A file named on the command line that cannot be read is an error; inside a folder,
unreadable or binary files are skipped with a warning (and counted)."""

from __future__ import annotations

import contextvars
import email
import email.policy
import html.parser
import logging
import mailbox
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Sequence

from dictate.punctuation.errors import PunctuationError

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown", ".rst", ".html", ".htm", ".xhtml", ".eml", ".mbox", ".mbx"}
MAX_FILE_BYTES = 50_000_000  # a single file larger than this is not someone's writing


@dataclass
class Corpus:
    paragraphs: list[str] = field(default_factory=list)
    files: int = 0
    skipped: list[str] = field(default_factory=list)  # "path: reason"

    @property
    def words(self) -> int:
        return sum(len(p.split()) for p in self.paragraphs)


_ANY_LENGTH: contextvars.ContextVar[bool] = contextvars.ContextVar("any_length", default=False)


def read_corpus(paths: Sequence[str | Path], *, prose_only: bool = True) -> Corpus:
    """Paragraphs from every file (folders are walked for the suffixes above, and mbox files).
    `prose_only=False` keeps short lines and list items too (a vocabulary wants every name; the
    punctuation model wants sentences only)."""
    token = _ANY_LENGTH.set(not prose_only)
    try:
        return _read_corpus(paths)
    finally:
        _ANY_LENGTH.reset(token)


def _read_corpus(paths: Sequence[str | Path]) -> Corpus:
    corpus = Corpus()
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file() and _wanted(p)):
                try:
                    corpus.paragraphs.extend(read_file(child))
                    corpus.files += 1
                except PunctuationError as exc:
                    log.warning("skipping %s", exc)
                    corpus.skipped.append(str(exc))
        elif path.is_file():
            corpus.paragraphs.extend(read_file(path))
            corpus.files += 1
        else:
            raise PunctuationError(f"{path}: no such file or folder")
    return corpus


def _wanted(path: Path) -> bool:
    if path.name.startswith("."):
        return False
    return path.suffix.lower() in TEXT_SUFFIXES or path.name.lower() in {"mbox", "inbox", "sent"}


def read_file(path: Path) -> list[str]:
    """One file's paragraphs, by its kind (suffix, or an mbox 'From ' first line)."""
    raw = _read_bytes(path)
    suffix = path.suffix.lower()
    if suffix in {".mbox", ".mbx"} or path.name.lower() in {"mbox", "inbox", "sent"} or raw.startswith(b"From "):
        return _mbox_paragraphs(path)
    if suffix == ".eml":
        return _message_paragraphs(email.message_from_bytes(raw, policy=email.policy.default))
    text = _decode(raw, path)
    if suffix in {".html", ".htm", ".xhtml"} or (suffix not in {".md", ".markdown", ".txt"} and _looks_html(text)):
        return html_paragraphs(text)
    if suffix in {".md", ".markdown", ".rst"}:
        return markdown_paragraphs(text)
    return text_paragraphs(text)


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise PunctuationError(f"{path}: {size / 1e6:.0f} MB is too large for a text file; split it or pick your own writing")
        raw = path.read_bytes()
    except OSError as exc:
        raise PunctuationError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if b"\x00" in raw[:8192]:
        raise PunctuationError(f"{path}: looks like a binary file, not text; give plain text, Markdown, HTML or e-mail files")
    return raw


def _decode(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PunctuationError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save it as UTF-8"
        ) from exc


def _looks_html(text: str) -> bool:
    head = text[:2000].lower()
    return "<html" in head or "<!doctype html" in head or "<body" in head


def text_paragraphs(text: str) -> list[str]:
    """Blank lines separate paragraphs; a file without blank lines has one paragraph per line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = re.split(r"\n\s*\n", text) if re.search(r"\n\s*\n", text.strip()) else text.split("\n")
    return [p for p in (" ".join(b.split()) for b in blocks) if _is_prose(p)]


def _is_prose(paragraph: str) -> bool:
    """Titles, signatures and stray lines are not sentences: they would teach 'no mark at the end'."""
    words = paragraph.split()
    if not words:
        return False
    return _ANY_LENGTH.get() or len(words) >= 6 or paragraph.rstrip("\"'”’)]").endswith((".", "?", "!", "…"))


_MD_FENCE = re.compile(r"^\s*(```|~~~).*?^\s*\1\s*$", re.S | re.M)
_MD_RULES = (
    (re.compile(r"^\s{0,3}#{1,6}\s.*$", re.M), ""),  # headings are titles, not sentences
    (re.compile(r"^\s{0,3}(?:[-*_]\s*){3,}$", re.M), ""),  # horizontal rules
    (re.compile(r"^(?: {4}|\t).*$", re.M), ""),  # indented code
    (re.compile(r"^\s*>\s?", re.M), ""),  # block quotes: keep the text
    (re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+", re.M), "\n"),  # list items are paragraphs of their own
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),  # images
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links: keep the text
    (re.compile(r"`[^`]*`"), ""),  # inline code
    (re.compile(r"<[^>]+>"), ""),  # inline HTML
    (re.compile(r"(\*\*|__|\*|_)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # emphasis
)


def markdown_paragraphs(text: str) -> list[str]:
    text = _MD_FENCE.sub("", text.replace("\r\n", "\n"))
    for pattern, repl in _MD_RULES:
        text = pattern.sub(repl, text)
    blocks = re.split(r"\n\s*\n", text)
    return [p for p in (" ".join(b.split()) for b in blocks) if _is_prose(p)]


class _HTMLText(html.parser.HTMLParser):
    BLOCKS = {"p", "div", "li", "br", "tr", "td", "th", "blockquote", "section", "article", "dd", "dt", "hr"}
    SKIP = {"script", "style", "head", "title", "pre", "code", "h1", "h2", "h3", "h4", "h5", "h6", "nav", "noscript"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.current: list[str] = []
        self.skip_depth = 0

    def _flush(self) -> None:
        if self.current:
            self.blocks.append(" ".join("".join(self.current).split()))
            self.current = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.SKIP:
            self.skip_depth += 1
        elif tag in self.BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in self.BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.current.append(data)


def html_paragraphs(text: str) -> list[str]:
    parser = _HTMLText()
    parser.feed(text)
    parser.close()
    parser._flush()
    return [p for p in parser.blocks if _is_prose(p)]


_QUOTE_HEADER = re.compile(r"^(On .{5,200} wrote:|-----\s*Original Message\s*-----|From: .+)$", re.M)


def email_body_paragraphs(body: str) -> list[str]:
    """The writer's own text: quoted replies, the quote header and the signature go."""
    body = body.replace("\r\n", "\n")
    sig = re.search(r"^-- ?$", body, re.M)
    if sig:
        body = body[: sig.start()]
    header = _QUOTE_HEADER.search(body)
    if header:
        body = body[: header.start()]
    body = "\n".join(line for line in body.split("\n") if not line.lstrip().startswith(">"))
    return text_paragraphs(body)


def _message_paragraphs(msg: Message) -> list[str]:
    plain: list[str] = []
    html_parts: list[str] = []
    for part in msg.walk() if msg.is_multipart() else [msg]:
        if part.get_content_maintype() != "text" or part.get_filename():
            continue
        try:
            content = part.get_content() if isinstance(part, EmailMessage) else part.get_payload(decode=True).decode(
                part.get_content_charset() or "utf-8", "replace")
        except (LookupError, UnicodeDecodeError, AttributeError, KeyError):
            continue  # one undecodable part must not lose the rest of the mailbox
        (plain if part.get_content_subtype() == "plain" else html_parts).append(content)
    if plain:
        return [p for body in plain for p in email_body_paragraphs(body)]
    return [p for body in html_parts for p in html_paragraphs(body)]


def _mbox_paragraphs(path: Path) -> list[str]:
    out: list[str] = []
    try:
        box = mailbox.mbox(str(path), factory=lambda f: email.message_from_binary_file(f, policy=email.policy.default),
                           create=False)
        for msg in box:
            if msg is not None:
                out.extend(_message_paragraphs(msg))
    except (OSError, mailbox.Error) as exc:
        raise PunctuationError(f"{path}: cannot read as a mailbox ({exc})") from exc
    return out


