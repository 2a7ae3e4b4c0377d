"""Single instance and the control socket, over real AF_UNIX sockets and real processes: round
trips, a second start, a stale socket left by a SIGKILLed app, another user's connection refused
(a child process running as nobody), permissions, malformed input, hung and slow clients."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import platformdirs
import pytest

from dictate import ipc
from dictate.config import Paths
from dictate.errors import DictateError
from tests.conftest import REPO, dictate_env
from tests.support.ipc_app import FakeApp

NOBODY = 65534


@pytest.fixture
def paths() -> Paths:
    return Paths.default()  # the per-test folders from conftest


@pytest.fixture
def app() -> FakeApp:
    return FakeApp()


@pytest.fixture
def server(paths, app):
    s = ipc.IpcServer(paths, app, timeout_s=1.0)
    s.start()
    yield s
    s.stop()


def raw_exchange(path: Path, data: bytes, timeout_s: float = 5.0) -> bytes:
    """Send bytes as they are and read until the server closes or answers a line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(str(path))
        s.sendall(data)
        out = b""
        while b"\n" not in out:
            chunk = s.recv(4096)
            if not chunk:
                break
            out += chunk
        return out


def spawn_app(*extra: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.ipc_app", *extra], env=dictate_env(), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc


def wait_ready(proc: subprocess.Popen) -> str:
    line = proc.stdout.readline().strip()
    assert line.startswith("ready"), (line, proc.stderr.read() if proc.poll() is not None else "")
    return line


def run_dictate(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dictate", *args], capture_output=True, text=True,
                          env=dictate_env(), cwd=REPO, timeout=timeout)


# --- wire format and handler failures (pure logic) ------------------------------------------------------

@pytest.mark.parametrize("line, reason", [
    (b"not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"cmd": "toggle"}', 'no "command"'),
    (b'{"command": 3}', 'no "command"'),
    (b"\xff\xfe", "not UTF-8"),
])
def test_malformed_requests_are_named(line, reason) -> None:
    with pytest.raises(ValueError, match=reason):
        ipc.decode_request(line)


def test_handler_failures_become_one_line_answers() -> None:
    def handle(m):
        if m["command"] == "boom":
            raise RuntimeError("broken")
        if m["command"] == "user":
            raise DictateError("no microphone: plug one in")
        if m["command"] == "none":
            return None
        return {"ok": 1, "message": "two\nlines", "state": "idle"}

    assert ipc.answer_for(handle, {"command": "boom"}) == {"ok": False, "message": "internal error: broken"}
    assert ipc.answer_for(handle, {"command": "user"}) == {"ok": False, "message": "no microphone: plug one in"}
    assert ipc.answer_for(handle, {"command": "none"})["ok"] is False
    assert ipc.answer_for(handle, {"command": "x"}) == {"ok": True, "message": "two lines", "state": "idle"}
    pong = ipc.answer_for(handle, {"command": "ping"})
    assert pong["ok"] is True and pong["pid"] == os.getpid()


def test_socket_folder_follows_runtime_dir_unless_the_state_folder_was_moved(tmp_path) -> None:
    default_state = platformdirs.PlatformDirs("dictate", appauthor=False).user_state_path
    base = dict(config_dir=tmp_path, data_dir=tmp_path, cache_dir=tmp_path, log_dir=tmp_path)
    everyday = Paths(**base, state_dir=default_state)
    assert ipc.runtime_dir(everyday, {"XDG_RUNTIME_DIR": "/run/user/1000"}) == Path("/run/user/1000/dictate")
    assert ipc.runtime_dir(everyday, {}) == default_state
    moved = Paths(**base, state_dir=tmp_path / "state")
    assert ipc.runtime_dir(moved, {"XDG_RUNTIME_DIR": "/run/user/1000"}) == tmp_path / "state"
    deep = Paths(**base, state_dir=tmp_path / ("x" * 120))
    short = ipc.runtime_dir(deep, {})
    assert len(str(short / ipc.SOCKET_NAME)) < 100 and short.parent == Path(tempfile.gettempdir())
    assert ipc.runtime_dir(deep, {}) == short  # the same folder every time


# --- real sockets in this process ----------------------------------------------------------------------

def test_round_trip_and_permissions(paths, server, app) -> None:
    answer = ipc.request(paths, {"command": "toggle"})
    assert answer == {"ok": True, "message": "listening", "state": "listening"}
    assert ipc.request(paths, {"command": "toggle"})["message"] == "stopped"
    assert app.commands() == ["toggle", "toggle"]
    sock = ipc.socket_path(paths)
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(sock.parent / ipc.LOCK_NAME).st_mode) == 0o600
    assert "ipc-server" in [t.name for t in threading.enumerate()]


def test_an_open_socket_folder_is_closed_to_others(paths, app) -> None:
    folder = ipc.runtime_dir(paths)
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    with ipc.IpcServer(paths, app):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700


def test_several_requests_on_one_connection(paths, server) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(str(ipc.socket_path(paths)))
        s.sendall(b'{"command":"start"}\n{"command":"status"}\n{"command":"stop"}')  # last without newline
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert [json.loads(line)["message"] for line in data.splitlines()] == ["listening", "listening", "stopped"]


def _open_files() -> dict[str, str]:
    """fd -> what it points at, for this process."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed while listing
            pass
    return out


def test_second_start_in_the_same_process_is_already_running(paths, server) -> None:
    before = _open_files()
    for _ in range(3):
        with pytest.raises(ipc.AlreadyRunning, match="already running"):
            ipc.IpcServer(paths, FakeApp()).start()
    # A refused start leaves nothing open. Other threads of a long test run may open a file of their
    # own meanwhile, so look at what the new fds are: none may be our lock file or socket folder, and
    # a leak per refused start would leave three.
    runtime = str(ipc.runtime_dir(paths))
    deadline = time.monotonic() + 5
    while True:
        new = {fd: target for fd, target in _open_files().items() if before.get(fd) != target}
        if not new or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not [t for t in new.values() if t.startswith(runtime)], new
    assert len(new) < 3, new
    assert ipc.request(paths, {"command": "status"})["ok"]  # the first one is untouched


def test_stop_removes_the_socket_and_frees_the_name(paths, app) -> None:
    s = ipc.IpcServer(paths, app)
    s.start()
    s.stop()
    assert not ipc.socket_path(paths).exists()
    with pytest.raises(ipc.NotRunning, match=r"not running \(start it with `dictate`\)"):
        ipc.request(paths, {"command": "toggle"})
    with ipc.IpcServer(paths, app):
        assert ipc.request(paths, {"command": "show"})["message"] == "shown"


def test_malformed_input_gets_an_answer_and_never_kills_the_server(paths, server, app) -> None:
    path = ipc.socket_path(paths)
    for data, reason in [(b"hello\n", "not JSON"), (b"[]\n", "JSON object"), (b'{"x": 1}\n', 'no "command"'),
                         (b"\xff\n", "not UTF-8"), (b"{" * (ipc.MAX_LINE_BYTES + 10), "longer than"),
                         (b'{"command": "boom"}\n', "internal error: the handler broke")]:
        answer = json.loads(raw_exchange(path, data))
        assert answer["ok"] is False and reason in answer["message"], (data[:20], answer)
    # a client that connects and leaves at once
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
    assert ipc.request(paths, {"command": "start"})["message"] == "listening"


def test_a_hung_client_does_not_block_others_and_is_closed_at_its_deadline(paths, server) -> None:
    path = ipc.socket_path(paths)
    hung = socket.socket(socket.AF_UNIX)
    hung.connect(str(path))
    hung.sendall(b'{"command": "sta')  # half a request, then nothing
    trickle = socket.socket(socket.AF_UNIX)
    trickle.connect(str(path))
    t0 = time.monotonic()
    answers = [ipc.request(paths, {"command": "status"}, timeout_s=2.0) for _ in range(5)]
    assert time.monotonic() - t0 < 1.0 and all(a["ok"] for a in answers)
    # a client sending one byte at a time gains nothing: its deadline counts from the start
    cut = None
    for b in b'{"command": "status", "padding": "................"}':
        try:
            trickle.send(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            cut = time.monotonic() - t0
            break
        time.sleep(0.1)
    assert cut is not None and cut < 2.0  # closed by the server (timeout_s=1)
    hung.settimeout(5)
    assert hung.recv(100) == b""
    assert time.monotonic() - t0 < 2.0
    hung.close()
    trickle.close()


def test_a_slow_request_does_not_hold_up_another(paths, server) -> None:
    slow = threading.Thread(target=ipc.request, args=(paths, {"command": "slow", "seconds": 1.5}),
                            name="slow-client")
    slow.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    assert ipc.request(paths, {"command": "status"})["ok"]
    assert time.monotonic() - t0 < 0.5
    slow.join()


def test_request_times_out_with_one_line(paths, server) -> None:
    with pytest.raises(ipc.IpcError, match="did not answer within 0.3 s"):
        ipc.request(paths, {"command": "slow", "seconds": 1.0}, timeout_s=0.3)


def test_hand_over(paths, app) -> None:
    assert ipc.hand_over(paths, wait_s=0.5) is False
    with ipc.IpcServer(paths, app):
        assert ipc.hand_over(paths) is True
        assert ipc.hand_over(paths, {"command": "toggle"}) is True
    assert app.commands() == ["show", "toggle"]


def test_hand_over_waits_for_an_instance_that_is_still_starting(paths, app) -> None:
    """The lock is taken before the socket listens; a second launch in that gap waits for it."""
    import fcntl

    folder = ipc.runtime_dir(paths)
    folder.mkdir(parents=True, mode=0o700)
    fd = os.open(folder / ipc.LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    server = ipc.IpcServer(paths, app)

    def come_up() -> None:
        time.sleep(0.6)
        os.close(fd)  # the same process "finishes starting": release, then listen
        server.start()

    t = threading.Thread(target=come_up, name="late-start")
    t.start()
    try:
        assert ipc.hand_over(paths, wait_s=5.0) is True
    finally:
        t.join()
        server.stop()
    assert app.commands() == ["show"]


# --- real processes ------------------------------------------------------------------------------------

def test_dictate_toggle_reaches_an_app_in_another_process(paths, tmp_path) -> None:
    journal = tmp_path / "seen.jsonl"
    proc = spawn_app("--journal", str(journal))
    try:
        wait_ready(proc)
        first = run_dictate("toggle")
        assert (first.returncode, first.stdout, first.stderr) == (0, "listening\n", "")
        second = run_dictate("toggle")
        assert (second.returncode, second.stdout) == (0, "stopped\n")
        with pytest.raises(ipc.AlreadyRunning):
            ipc.IpcServer(paths, FakeApp()).start()
        # a second app process also finds it running
        other = spawn_app()
        assert other.stdout.readline().strip() == "already-running" and other.wait(10) == 3
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
    assert [json.loads(line)["command"] for line in journal.read_text().splitlines()] == ["toggle", "toggle"]
    assert not ipc.socket_path(paths).exists()  # a clean shutdown removes its socket


def test_a_stale_socket_from_a_sigkilled_app_is_replaced(paths, app, caplog) -> None:
    proc = spawn_app()
    wait_ready(proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    sock = ipc.socket_path(paths)
    assert stat.S_ISSOCK(os.stat(sock).st_mode)  # left behind
    with pytest.raises(ipc.NotRunning):
        ipc.request(paths, {"command": "toggle"})
    assert run_dictate("toggle").stderr == "dictate is not running (start it with `dictate`)\n"
    assert ipc.hand_over(paths, wait_s=1.0) is False
    with caplog.at_level(logging.WARNING, logger="dictate.ipc"):
        with ipc.IpcServer(paths, app):
            assert ipc.request(paths, {"command": "start"})["message"] == "listening"
    assert "replacing the stale socket" in caplog.text


def test_two_racing_launches_give_exactly_one_instance(paths) -> None:
    procs = [spawn_app() for _ in range(4)]
    try:
        firsts = [p.stdout.readline().strip() for p in procs]
        assert sorted(f.split()[0] for f in firsts) == ["already-running"] * 3 + ["ready"]
        winner = procs[firsts.index(next(f for f in firsts if f.startswith("ready")))]
        assert ipc.request(paths, {"command": "ping"})["pid"] == winner.pid
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
            p.wait(10)


# --- other users ---------------------------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")

def as_nobody(work) -> str:
    """Run work() in a forked child that has become uid/gid nobody; its return value (a string)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to nobody, do the work, report, and leave without cleanup
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            result = work()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            result = f"error {type(exc).__name__}: {exc}"
        os.write(w, result.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


def connect_and_toggle(path: Path):
    def work() -> str:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        try:
            s.connect(str(path))
        except PermissionError:
            return "permission-denied"
        try:
            s.sendall(b'{"command": "toggle"}\n')
            data = s.recv(4096)
        except (ConnectionResetError, BrokenPipeError):  # closed before or after it read our bytes
            return "closed"
        return "closed" if data == b"" else "answered " + data.decode()
    return work


@pytest.fixture
def shared_paths():
    """Folders outside the per-test temp tree (which only root can enter), so a process running as
    nobody can reach the socket's folder when a test opens it."""
    root = Path(tempfile.mkdtemp(prefix="dictate-ipc-"))
    root.chmod(0o755)
    p = Paths(config_dir=root / "config", data_dir=root / "data", cache_dir=root / "cache",
              log_dir=root / "log", state_dir=root / "state")
    yield p
    shutil.rmtree(root, ignore_errors=True)


@needs_root
def test_another_users_connection_is_refused_and_logged(shared_paths, app, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="dictate.ipc"), ipc.IpcServer(shared_paths, app) as server:
        sock = ipc.socket_path(shared_paths)
        # First gate: the 0700 folder and the 0600 socket keep other users out altogether.
        assert as_nobody(connect_and_toggle(sock)) == "permission-denied"
        # Second gate: even when the file modes let them in, the peer's uid is checked.
        sock.parent.chmod(0o711)
        sock.chmod(0o666)
        assert as_nobody(connect_and_toggle(sock)) == "closed"
        assert app.seen == []  # the request never reached the controller
        assert f"refused a connection from uid {NOBODY}" in caplog.text
        # and the owner is still served
        assert ipc.request(shared_paths, {"command": "start"})["message"] == "listening"
        assert server.address == str(sock)


@needs_root
def test_a_socket_served_by_another_user_is_not_talked_to(shared_paths) -> None:
    folder = ipc.runtime_dir(shared_paths)
    folder.mkdir(parents=True)
    os.chown(folder, NOBODY, NOBODY)
    sock = ipc.socket_path(shared_paths)
    ready_r, ready_w = os.pipe()

    def impostor() -> str:
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(sock))
        s.listen(1)
        os.write(ready_w, b"r")
        c, _ = s.accept()
        c.settimeout(5)
        c.recv(4096)
        c.sendall(b'{"ok": true, "message": "impostor"}\n')
        return "served"

    result: list[str] = []
    t = threading.Thread(target=lambda: result.append(as_nobody(impostor)), name="impostor")
    t.start()
    try:
        assert os.read(ready_r, 1) == b"r"
        assert os.stat(sock).st_uid == NOBODY
        with pytest.raises(ipc.IpcError, match=f"served by uid {NOBODY}, not by you"):
            ipc.request(shared_paths, {"command": "toggle"})
        # and the app will not set up home in a folder someone else owns
        with pytest.raises(DictateError, match=f"belongs to uid {NOBODY}"):
            ipc.IpcServer(shared_paths, FakeApp()).start()
    finally:
        t.join(10)
        os.close(ready_r)
        os.close(ready_w)
