"""Stock models in the Hugging Face cache for the models manager: whether one is there and how big,
a download with byte progress that can be cancelled at once and resumed later, and deleting one.

The download runs in a child process (`python -m dictate.engines.fetch NAME FORMAT`), so cancel is
a kill that never waits for a network read. It resumes: huggingface_hub 2.x writes each attempt
to a file of its own and never resumes one, so the child fetches each file with huggingface_hub's
own `http_get` into `blobs/<etag>.dictate-part` (kept when killed; the next attempt asks for the
rest with a Range request), then lays it out as huggingface_hub's cache does (the blob named by
its etag, the snapshot's link to it, refs/main), so every reader of the cache finds it. The
child reports on stdout, one
JSON object per line: {"total": bytes} first, then {"done": bytes} as it goes, and last
{"path": ...} or {"error": one line}.

The cache folder is read from the environment at each call (HF_HUB_CACHE, HF_HOME), as
huggingface_hub itself does only once, at import."""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from dictate.engines.models import CT2_FILES, ModelFormat, _hub_target, is_ct2_dir
from dictate.errors import DictateError, ModelError

log = logging.getLogger(__name__)


class DownloadCancelled(DictateError):
    pass


def cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _repo_folder(repo: str) -> Path:
    return cache_dir() / f"models--{repo.replace('/', '--')}"


def _snapshot_files(repo: str) -> list[Path]:
    snapshots = _repo_folder(repo) / "snapshots"
    return [p for p in snapshots.rglob("*") if p.is_file()] if snapshots.is_dir() else []


@dataclass(frozen=True)
class Cached:
    path: Path  # the snapshot folder (CTranslate2) or file (ggml)
    size_bytes: int  # what deleting it frees


def cached(name: str, fmt: ModelFormat) -> Cached | None:
    """The stock model in the cache, complete, or None. Never touches the network."""
    repo, filename = _hub_target(name, fmt)
    if filename is not None:
        for f in _snapshot_files(repo):
            if f.name == filename:
                return Cached(f, f.resolve().stat().st_size)
        return None
    for snapshot in sorted((_repo_folder(repo) / "snapshots").glob("*")) if _repo_folder(repo).is_dir() else []:
        if is_ct2_dir(snapshot):
            return Cached(snapshot, _folder_bytes(_repo_folder(repo)))
    return None


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


PART = ".dictate-part"


def partial_bytes(name: str, fmt: ModelFormat) -> int:
    """Bytes of an interrupted download waiting to be resumed."""
    repo, _ = _hub_target(name, fmt)
    blobs = _repo_folder(repo) / "blobs"
    return sum(p.stat().st_size for p in blobs.glob(f"*{PART}")) if blobs.is_dir() else 0


def delete(name: str, fmt: ModelFormat) -> int:
    """Remove a stock model from the cache (and any partial download of it); the bytes freed."""
    repo, filename = _hub_target(name, fmt)
    folder = _repo_folder(repo)
    if filename is None:  # a CTranslate2 repo holds one model: the whole folder goes
        if not folder.is_dir():
            return 0
        freed = _folder_bytes(folder)
        shutil.rmtree(folder)
        log.info("models: deleted %s (%d bytes)", name, freed)
        return freed
    freed = 0
    for link in _snapshot_files(repo):  # whisper.cpp's repo holds every ggml model: only this file
        if link.name == filename:
            blob = link.resolve()
            if blob != link and blob.exists():
                freed += blob.stat().st_size
                blob.unlink()
            elif link.exists():
                freed += link.stat().st_size
            link.unlink()
    log.info("models: deleted %s (%d bytes)", name, freed)
    return freed


# --- the child process -----------------------------------------------------------------------------

def _files(repo: str, filename: str | None) -> list[tuple[str, int | None]]:
    from huggingface_hub import HfApi

    if filename is not None:
        entries = HfApi().list_repo_tree(repo, recursive=True)
        return [(e.path, getattr(e, "size", None)) for e in entries if e.path == filename] or [(filename, None)]
    entries = HfApi().list_repo_tree(repo, recursive=True)
    return [(e.path, getattr(e, "size", None)) for e in entries
            if getattr(e, "size", None) is not None and any(fnmatch.fnmatch(e.path, p) for p in CT2_FILES)]


def _report(**fields) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def child_main(name: str, fmt_value: str) -> int:
    """Download into the cache, reporting JSON lines on stdout (see the module docstring)."""
    import huggingface_hub
    from huggingface_hub.utils import tqdm as base_tqdm  # the class its downloads take

    fmt = ModelFormat(fmt_value)
    try:
        repo, filename = _hub_target(name, fmt)
        files = _files(repo, filename)
        total = sum(size or 0 for _f, size in files)
        _report(total=total, files=len(files))
        done = 0

        class Progress(base_tqdm):  # huggingface_hub calls update() per chunk it writes
            def __init__(self, *args, **kwargs):
                nonlocal done
                done += int(kwargs.get("initial") or 0)  # resumed bytes count as done
                kwargs["disable"] = True
                super().__init__(*args, **kwargs)
                _report(done=done)

            def update(self, n=1):
                nonlocal done
                done += int(n or 0)
                _report(done=done)

        path: Path | None = None
        for f, _size in files:
            before = done
            p = _fetch_file(huggingface_hub, repo, f, Progress)
            done = before + p.stat().st_size
            _report(done=done)
            path = p if filename is not None else p.parent
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        _report(error=f"model {name!r} could not be fetched ({reason[:200]})")
        return 1
    _report(path=str(path))
    return 0


def _fetch_file(hf, repo: str, filename: str, tqdm_class) -> Path:
    """One file into the cache, resuming a part left by an earlier attempt."""
    from huggingface_hub.file_download import http_get

    url = hf.hf_hub_url(repo, filename)
    meta = hf.get_hf_file_metadata(url)
    folder = _repo_folder(repo)
    blob = folder / "blobs" / str(meta.etag)
    link = folder / "snapshots" / str(meta.commit_hash) / filename
    if not blob.exists():
        blob.parent.mkdir(parents=True, exist_ok=True)
        part = blob.with_name(blob.name + PART)
        resume = part.stat().st_size if part.exists() else 0
        if meta.size is not None and resume > meta.size:  # not this file's beginning: start over
            part.unlink()
            resume = 0
        with open(part, "ab") as fh:
            http_get(meta.location or url, fh, resume_size=resume, expected_size=meta.size,
                     displayed_filename=filename, tqdm_class=tqdm_class)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, blob)
    elif tqdm_class is not None:
        tqdm_class(total=meta.size, initial=meta.size).close()  # already here: counts as done
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        try:
            link.symlink_to(os.path.relpath(blob, link.parent))
        except OSError:  # no symlinks (Windows without developer mode): a copy, as huggingface_hub does
            shutil.copyfile(blob, link)
    refs = folder / "refs" / "main"
    refs.parent.mkdir(parents=True, exist_ok=True)
    refs.write_text(str(meta.commit_hash))
    return link


@dataclass
class Download:
    """A download in a child process; `wait()` on any thread but the GUI's."""

    name: str
    fmt: ModelFormat
    on_progress: Callable[[int, int], None] | None = None  # (done bytes, total bytes), from the reading thread

    def __post_init__(self) -> None:
        self.total = 0
        self.done = 0
        self.cancelled = threading.Event()
        self._proc: subprocess.Popen | None = None

    def start(self) -> "Download":
        _hub_target(self.name, self.fmt)  # an unknown name fails here, in one line
        if offline():
            raise ModelError(f"model {self.name!r} cannot be downloaded: HF_HUB_OFFLINE is set (offline). Unset it, "
                             f"or download on a connected machine (`dictate models download {self.name}`)")
        env = dict(os.environ)
        env.setdefault("HF_HUB_CACHE", str(cache_dir()))
        env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        self._proc = subprocess.Popen([sys.executable, "-m", "dictate.engines.fetch", self.name, self.fmt.value],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        log.info("models: downloading %s (pid %d)", self.name, self._proc.pid)
        return self

    def wait(self) -> Path:
        """Until it ends: the path, or DownloadCancelled, or ModelError with the reason."""
        assert self._proc is not None and self._proc.stdout is not None
        result: dict = {}
        for line in self._proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "total" in msg:
                self.total = int(msg["total"])
            if "done" in msg:
                self.done = int(msg["done"])
                if self.on_progress is not None:
                    self.on_progress(self.done, self.total)
            if "path" in msg or "error" in msg:
                result = msg
        self._proc.wait()
        self._proc.stdout.close()
        if self.cancelled.is_set():
            raise DownloadCancelled(f"download of {self.name} cancelled; it goes on from there next time")
        if "path" in result:
            return Path(result["path"])
        raise ModelError(result.get("error") or f"the download of {self.name} ended without a result "
                                                f"(exit {self._proc.returncode})")

    def cancel(self) -> None:
        """At once: the child is killed; what it fetched stays for the next attempt."""
        self.cancelled.set()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1], sys.argv[2]))
