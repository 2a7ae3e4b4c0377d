"""Single instance and the local control channel: `dictate toggle` and friends reach the running app.

One JSON object per line each way. A request is {"command": "toggle" | "start" | "stop" | "cancel" |
"note-start" | "note-stop" | "note-status" | "show" | "status" | "ping", ...}; the answer is
{"ok": bool, "message": "one line", ...}. "ping" is answered by the server itself (liveness); every
other request goes to the `handle` callable (the controller's handle_ipc).

POSIX: an AF_UNIX socket in a 0700 folder of the user's runtime dir, mode 0600, and the peer's uid
is checked on every connection (SO_PEERCRED / LOCAL_PEERCRED): another user is refused and logged.
A lock file next to the socket (flock, held for the server's life) decides which of two racing
launches wins; the kernel drops the lock when a process dies, so a socket left by a crashed app
is known to be stale and is replaced.
Windows: a named pipe per user through multiprocessing.connection, one message per request."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import platformdirs

from dictate.config import APP_NAME, Paths
from dictate.errors import DictateError

log = logging.getLogger(__name__)

SOCKET_NAME = "dictate.sock"
LOCK_NAME = "dictate.lock"
MAX_LINE_BYTES = 64 * 1024
MAX_CONNECTIONS = 16  # at once; more are turned away so a flood cannot pile up threads
_WINDOWS = sys.platform == "win32"
# sun_path is 108 bytes on Linux, 104 on macOS; longer paths move to a short folder in the temp dir.
_MAX_SUN_PATH = 100

Handler = Callable[[dict], dict]


class AlreadyRunning(DictateError):
    """Another instance of the app is running for this user."""


class NotRunning(DictateError):
    """No instance of the app answers."""

    def __init__(self, message: str = "dictate is not running (start it with `dictate`)") -> None:
        super().__init__(message)


class IpcError(DictateError):
    """The running app was reached but the exchange failed (timeout, bad answer, wrong owner)."""


# --- where ----------------------------------------------------------------------------------------------

def runtime_dir(paths: Paths, env: dict[str, str] | None = None) -> Path:
    """The folder of the socket and its lock file.

    $XDG_RUNTIME_DIR/dictate when there is a runtime dir, else the state folder. When the state
    folder was moved (tests, portable installs) the socket lives there instead, so that each set of
    folders is its own instance and never reaches the user's everyday app."""
    env = os.environ if env is None else env
    default_state = platformdirs.PlatformDirs(APP_NAME, appauthor=False).user_state_path
    moved = Path(paths.state_dir) != Path(default_state)
    base = Path(paths.state_dir) if moved or not env.get("XDG_RUNTIME_DIR") else Path(env["XDG_RUNTIME_DIR"]) / APP_NAME
    if len(os.fsencode(base / SOCKET_NAME)) > _MAX_SUN_PATH:
        digest = hashlib.sha256(os.fsencode(base)).hexdigest()[:12]
        base = Path(tempfile.gettempdir()) / f"{APP_NAME}-{_uid()}-{digest}"
    return base


def socket_path(paths: Paths) -> Path:
    return runtime_dir(paths) / SOCKET_NAME


def pipe_name(paths: Paths) -> str:
    """Windows: one pipe per user (and per moved state folder)."""
    user = "".join(c for c in os.environ.get("USERNAME", "user") if c.isalnum()) or "user"
    digest = hashlib.sha256(os.fsencode(Path(paths.state_dir))).hexdigest()[:12]
    return rf"\\.\pipe\{APP_NAME}-{user}-{digest}"


def _uid() -> int:
    return os.getuid() if hasattr(os, "getuid") else 0


# --- wire format ----------------------------------------------------------------------------------------

def encode(message: dict) -> bytes:
    return (json.dumps(message, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def decode_request(line: bytes) -> dict:
    """A request object, or ValueError with a one-line reason."""
    try:
        message = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("the request is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"the request is not JSON ({exc.msg})") from None
    if not isinstance(message, dict):
        raise ValueError("the request must be a JSON object")
    if not isinstance(message.get("command"), str) or not message["command"]:
        raise ValueError('the request has no "command"')
    return message


def answer_for(handle: Handler, message: dict) -> dict:
    """What the server sends back for one well-formed request; the handler's failures become answers."""
    if message["command"] == "ping":
        return {"ok": True, "message": "pong", "pid": os.getpid()}
    try:
        answer = handle(message)
    except DictateError as exc:
        return {"ok": False, "message": str(exc)}
    except Exception as exc:  # the server outlives any one request
        log.exception("ipc: the handler failed on %r", message.get("command"))
        return {"ok": False, "message": f"internal error: {exc}"}
    if not isinstance(answer, dict):
        log.error("ipc: the handler returned %r for %r", type(answer).__name__, message.get("command"))
        return {"ok": False, "message": "internal error: no answer"}
    answer = dict(answer)
    answer["ok"] = bool(answer.get("ok", False))
    answer["message"] = " ".join(str(answer.get("message", "")).split())  # one line
    return answer


def _answer_line(handle: Handler, line: bytes) -> bytes:
    try:
        message = decode_request(line)
    except ValueError as exc:
        return encode({"ok": False, "message": str(exc)})
    answer = answer_for(handle, message)
    try:
        return encode(answer)
    except (TypeError, ValueError) as exc:
        log.error("ipc: answer to %r is not JSON: %s", message["command"], exc)
        return encode({"ok": False, "message": "internal error: the answer is not JSON"})


# --- peer credentials -------------------------------------------------------------------------------------

def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a connected AF_UNIX socket; None where the
    platform has no way to tell (the 0700 folder is then the only gate)."""
    if hasattr(socket, "SO_PEERCRED"):  # Linux: struct ucred {pid, uid, gid}
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", raw)[1]
    if sys.platform == "darwin" or sys.platform.startswith("freebsd"):
        # LOCAL_PEERCRED (level SOL_LOCAL = 0, option 1) gives struct xucred {u_int version; uid_t uid; ...}
        raw = sock.getsockopt(0, 1, 76)
        return struct.unpack("=II", raw[:8])[1]
    return None


# --- server ---------------------------------------------------------------------------------------------

class IpcServer:
    """Serves requests on a named thread; each connection gets its own short-lived thread with a
    deadline, so a slow or hung client never holds up another."""

    def __init__(self, paths: Paths, handle: Handler, *, timeout_s: float = 5.0) -> None:
        self.paths = paths
        self.handle = handle
        self.timeout_s = timeout_s
        self._impl: _UnixServer | _PipeServer | None = None

    @property
    def address(self) -> str:
        return pipe_name(self.paths) if _WINDOWS else str(socket_path(self.paths))

    def start(self) -> None:
        """Listen; raises AlreadyRunning when a live instance holds the socket."""
        if self._impl is not None:
            return
        impl = _PipeServer(self) if _WINDOWS else _UnixServer(self)
        impl.start()
        self._impl = impl

    def stop(self) -> None:
        if self._impl is not None:
            self._impl.stop()
            self._impl = None

    def __enter__(self) -> "IpcServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Slots:
    """Counts live connection threads."""

    def __init__(self, limit: int) -> None:
        self._sem = threading.BoundedSemaphore(limit)

    def take(self) -> bool:
        return self._sem.acquire(blocking=False)

    def give(self) -> None:
        self._sem.release()


class _UnixServer:
    def __init__(self, owner: IpcServer) -> None:
        self.owner = owner
        self.dir = runtime_dir(owner.paths)
        self.path = self.dir / SOCKET_NAME
        self._lock_fd: int | None = None
        self._sock: socket.socket | None = None
        self._inode: tuple[int, int] | None = None
        self._wake_r: socket.socket | None = None  # wakes the accept loop on stop
        self._wake_w: socket.socket | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._slots = _Slots(MAX_CONNECTIONS)
        self._count = 0
        self._uid = _uid()

    def start(self) -> None:
        _private_dir(self.dir)
        self._lock_fd = _try_lock(self.dir / LOCK_NAME)
        if self._lock_fd is None:
            raise AlreadyRunning(_already_message(self.owner.paths))
        try:
            self._bind()
        except BaseException:
            self._unlock()
            raise
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="ipc-server", daemon=True)
        self._thread.start()
        log.info("ipc: listening on %s", self.path)

    def _bind(self) -> None:
        if self.path.exists() or self.path.is_symlink():
            # We hold the lock, so whoever made this socket is gone, unless it predates the lock
            # file (removed by hand): ask before replacing it.
            if _answers(self.path, timeout_s=1.0):
                raise AlreadyRunning(_already_message(self.owner.paths))
            log.warning("ipc: replacing the stale socket %s left by an app that did not shut down", self.path)
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is born 0600: no window where others could connect
        try:
            sock.bind(str(self.path))
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        sock.listen(16)
        st = os.stat(self.path)
        self._inode = (st.st_dev, st.st_ino)
        self._sock = sock

    def _serve(self) -> None:
        import selectors

        sel = selectors.DefaultSelector()
        assert self._sock is not None
        sel.register(self._sock, selectors.EVENT_READ)
        sel.register(self._wake_r, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                for key, _ in sel.select():
                    if key.fileobj is self._wake_r:
                        return
                    try:
                        conn, _addr = self._sock.accept()
                    except OSError as exc:
                        if exc.errno in (errno.EINTR, errno.EAGAIN, errno.ECONNABORTED):
                            continue
                        log.error("ipc: accept failed: %s", exc)
                        return
                    self._admit(conn)
        finally:
            sel.close()

    def _admit(self, conn: socket.socket) -> None:
        try:
            uid = peer_uid(conn)
        except OSError as exc:
            log.warning("ipc: refused a connection whose user cannot be told (%s)", exc)
            conn.close()
            return
        if uid is not None and uid != self._uid:
            log.warning("ipc: refused a connection from uid %d (this app runs as uid %d)", uid, self._uid)
            conn.close()
            return
        if not self._slots.take():
            log.warning("ipc: too many connections at once; turning one away")
            _send_quietly(conn, encode({"ok": False, "message": "busy, try again"}))
            conn.close()
            return
        self._count += 1
        threading.Thread(target=self._converse, args=(conn,), name=f"ipc-conn-{self._count}", daemon=True).start()

    def _converse(self, conn: socket.socket) -> None:
        """Answer each line until EOF, a deadline passes, or the server stops."""
        buf = b""
        try:
            while not self._stopping.is_set():
                line, buf = _read_line(conn, buf, self.owner.timeout_s)
                if line is None:
                    return
                conn.sendall(_answer_line(self.owner.handle, line))
        except _TooLong:
            _send_quietly(conn, encode({"ok": False, "message": f"the request is longer than {MAX_LINE_BYTES} bytes"}))
        except socket.timeout:
            log.info("ipc: a client sent no complete request within %.1f s; closed", self.owner.timeout_s)
        except OSError as exc:
            log.info("ipc: a connection ended early: %s", exc)
        finally:
            conn.close()
            self._slots.give()

    def stop(self) -> None:
        self._stopping.set()
        if self._wake_w is not None:
            self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(5.0)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        # Remove the socket only if it is still ours (never another instance's).
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self._inode:
                self.path.unlink()
        except OSError:
            pass
        for s in (self._wake_r, self._wake_w):
            if s is not None:
                s.close()
        self._unlock()
        log.info("ipc: stopped")

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None


class _TooLong(Exception):
    pass


def _read_line(conn: socket.socket, buf: bytes, timeout_s: float) -> tuple[bytes | None, bytes]:
    """One line within timeout_s of being asked for it (a client trickling bytes gains nothing)."""
    deadline = time.monotonic() + timeout_s
    while b"\n" not in buf:
        if len(buf) > MAX_LINE_BYTES:
            raise _TooLong
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout
        conn.settimeout(left)
        chunk = conn.recv(4096)
        if not chunk:
            return (buf if buf.strip() else None), b""  # a last line without its newline still counts
        buf += chunk
    line, _, rest = buf.partition(b"\n")
    if len(line) > MAX_LINE_BYTES:
        raise _TooLong
    return line, rest


def _send_quietly(conn: socket.socket, data: bytes) -> None:
    try:
        conn.settimeout(1.0)
        conn.sendall(data)
    except OSError:
        pass


def _private_dir(path: Path) -> None:
    """Make the socket folder, 0700 and ours; refuse one that another user owns."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = os.stat(path)
    if st.st_uid != _uid():
        raise DictateError(f"{path} belongs to uid {st.st_uid}, not to you; remove it or fix its owner")
    if st.st_mode & 0o777 != 0o700:
        os.chmod(path, 0o700)


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on `path`, or None when another live process holds it."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return None
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _already_message(paths: Paths) -> str:
    return "dictate is already running (use its tray icon, or `dictate toggle`)"


def _answers(path: Path, timeout_s: float) -> bool:
    try:
        return bool(_unix_request(path, {"command": "ping"}, timeout_s).get("ok"))
    except DictateError:
        return False


# --- client ---------------------------------------------------------------------------------------------

def request(paths: Paths, message: dict, timeout_s: float = 5.0) -> dict:
    """Send one request to the running app and return its answer.
    NotRunning when no app listens; IpcError when it does but the exchange fails."""
    if _WINDOWS:
        return _pipe_request(pipe_name(paths), message, timeout_s)
    return _unix_request(socket_path(paths), message, timeout_s)


def _unix_request(path: Path, message: dict, timeout_s: float) -> dict:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout_s)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            raise NotRunning() from None
        except PermissionError:
            raise IpcError(f"cannot reach the app's socket {path}: permission denied") from None
        except socket.timeout:
            raise IpcError(f"dictate did not accept the request within {timeout_s:g} s") from None
        uid = peer_uid(sock)
        if uid is not None and uid != _uid():
            raise IpcError(f"the socket {path} is served by uid {uid}, not by you; not talking to it")
        sock.sendall(encode(message))
        line, _ = _read_line(sock, b"", timeout_s)
    except socket.timeout:
        raise IpcError(f"dictate did not answer within {timeout_s:g} s") from None
    except _TooLong:
        raise IpcError("dictate's answer is too long") from None
    except (ConnectionResetError, BrokenPipeError):
        raise NotRunning() from None
    finally:
        sock.close()
    if line is None:
        raise IpcError("dictate closed the connection without answering")
    return _parse_answer(line)


def _parse_answer(line: bytes) -> dict:
    try:
        answer = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise IpcError("dictate sent an answer that is not JSON") from None
    if not isinstance(answer, dict) or "ok" not in answer:
        raise IpcError("dictate sent an answer without \"ok\"")
    answer.setdefault("message", "")
    return answer


def is_running(paths: Paths, timeout_s: float = 2.0) -> bool:
    try:
        return bool(request(paths, {"command": "ping"}, timeout_s).get("ok"))
    except DictateError:
        return False


def hand_over(paths: Paths, message: dict[str, Any] | None = None, *, wait_s: float = 5.0) -> bool:
    """For a second launch: True when a running instance took `message` (default: show yourself).
    An instance that holds the lock but is still starting is waited for up to wait_s."""
    message = message or {"command": "show"}
    deadline = time.monotonic() + wait_s
    while True:
        try:
            answer = request(paths, message, timeout_s=max(1.0, wait_s))
            log.info("ipc: handed over to the running app: %s", answer.get("message"))
            return True
        except NotRunning:
            if not _lock_held(paths) or time.monotonic() > deadline:
                return False
        except IpcError as exc:
            log.warning("ipc: the running app did not take over: %s", exc)
            return False
        time.sleep(0.1)


def _lock_held(paths: Paths) -> bool:
    """Is another process between taking the lock and listening (or simply running)?"""
    if _WINDOWS:
        return False
    path = runtime_dir(paths) / LOCK_NAME
    if not path.exists():
        return False
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock if we took it


# --- Windows: a named pipe --------------------------------------------------------------------------------

class _PipeServer:  # pragma: no cover - exercised on Windows only
    """multiprocessing.connection frames each message, so a request is one message (the same JSON
    line). The pipe's default security gives write access only to its creator, SYSTEM and admins."""

    def __init__(self, owner: IpcServer) -> None:
        self.owner = owner
        self.name = pipe_name(owner.paths)
        self._listener = None
        self._lock_file = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._slots = _Slots(MAX_CONNECTIONS)
        self._count = 0

    def start(self) -> None:
        import msvcrt
        from multiprocessing.connection import Listener

        lock_path = Path(self.owner.paths.state_dir) / LOCK_NAME
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        f = open(lock_path, "a+b")
        try:
            f.seek(0)
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            f.close()
            raise AlreadyRunning(_already_message(self.owner.paths)) from None
        self._lock_file = f
        # Holding the lock, a pipe that answers is an instance from before the lock existed.
        if _pipe_answers(self.name):
            self._release()
            raise AlreadyRunning(_already_message(self.owner.paths))
        self._listener = Listener(self.name, family="AF_PIPE")
        self._thread = threading.Thread(target=self._serve, name="ipc-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn = self._listener.accept()
            except OSError as exc:
                if not self._stopping.is_set():
                    log.error("ipc: accept failed: %s", exc)
                return
            if self._stopping.is_set():
                conn.close()
                return
            if not self._slots.take():
                conn.close()
                continue
            self._count += 1
            threading.Thread(target=self._converse, args=(conn,), name=f"ipc-conn-{self._count}",
                             daemon=True).start()

    def _converse(self, conn) -> None:
        try:
            with conn:
                while not self._stopping.is_set():
                    if not conn.poll(self.owner.timeout_s):
                        return
                    data = conn.recv_bytes(MAX_LINE_BYTES)
                    conn.send_bytes(_answer_line(self.owner.handle, data.rstrip(b"\n")))
        except (EOFError, OSError) as exc:
            log.info("ipc: a connection ended: %s", exc)
        finally:
            self._slots.give()

    def stop(self) -> None:
        from multiprocessing.connection import Client

        self._stopping.set()
        try:  # wake the blocking accept
            Client(self.name, family="AF_PIPE").close()
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(5.0)
        if self._listener is not None:
            self._listener.close()
        self._release()

    def _release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def _pipe_request(name: str, message: dict, timeout_s: float) -> dict:  # pragma: no cover - Windows
    from multiprocessing.connection import Client

    try:
        conn = Client(name, family="AF_PIPE")
    except (FileNotFoundError, ConnectionRefusedError):
        raise NotRunning() from None
    except OSError as exc:
        raise IpcError(f"cannot reach dictate: {exc}") from None
    with conn:
        try:
            conn.send_bytes(encode(message))
            if not conn.poll(timeout_s):
                raise IpcError(f"dictate did not answer within {timeout_s:g} s")
            return _parse_answer(conn.recv_bytes(MAX_LINE_BYTES).rstrip(b"\n"))
        except (EOFError, OSError):
            raise IpcError("dictate closed the connection without answering") from None


def _pipe_answers(name: str) -> bool:  # pragma: no cover - Windows
    try:
        return bool(_pipe_request(name, {"command": "ping"}, 1.0).get("ok"))
    except DictateError:
        return False
