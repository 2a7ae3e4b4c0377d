"""Text the user edited by hand: saved as a new revision of a history entry (the previous text is
kept in the history's revisions), and for a note also in its folder's note.md, so the folder and
the history say the same thing."""

from __future__ import annotations

import logging
import re
from datetime import datetime

from dictate.config import Config
from dictate.errors import DictateError
from dictate.longform import title_from
from dictate.storage import History, HistoryEntry, NoteStore, render_markdown

log = logging.getLogger(__name__)

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def paragraphs_of(text: str) -> list[str]:
    return [p.strip() for p in _PARAGRAPH_BREAK.split(text) if p.strip()]


def save_text(cfg: Config, entry_id: str, text: str) -> HistoryEntry:
    """Replace an entry's text with `text` (unchanged text writes nothing)."""
    history = History(cfg.paths.history_db)
    entry = history.get(entry_id)
    if entry is None:
        raise DictateError(f"no note or transcription with id {entry_id} (see `dictate note list`)")
    text = "\n\n".join(paragraphs_of(text))
    if text == entry.text.strip():
        return entry
    title = title_from(text, entry.title)
    if entry.kind == "note":
        store = NoteStore(cfg.notes_dir)
        note = store.get(entry_id)
        if note is not None:
            meta = dict(note.meta)
            started = str(meta.get("started_at", ""))
            md = render_markdown(title, paragraphs_of(text), when=started[:16].replace("T", " "),
                                 duration_s=meta.get("duration_s"), notices=meta.get("notices", []))
            meta.update(title=title, edited_at=datetime.now().astimezone().isoformat(timespec="seconds"))
            store.write(entry_id, meta, md)
    log.info("%s: edited text saved (%d characters)", entry_id, len(text))
    return history.replace_text(entry_id, text, title=title)
