"""The crash-safe journal: exact round trip, durability cadence, repair after a kill, full disks."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dictate.audio.files import decode
from dictate.audio.journal import (HEADER_BYTES, SIDECAR, Journal, JournalFullError, JournalState, JournalWriter,
                                   find_unfinished, list_journals)
from dictate.errors import OutputError

RATE = 16_000


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, int(seconds * RATE)).astype(np.float32)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_round_trip_is_sample_exact_across_parts(tmp_path: Path) -> None:
    audio = noise(3.3)
    w = JournalWriter.create(tmp_path, {"source": "test"}, part_max_samples=RATE)  # 1 s parts
    for chunk in np.array_split(audio, 17):
        w.append(chunk)
    w.close()
    j = Journal(w.folder)
    assert j.state == JournalState.STOPPED
    assert j.sidecar["source"] == "test"
    assert len(j.parts) == 4
    assert j.num_samples == audio.size
    np.testing.assert_array_equal(j.read(), audio)
    np.testing.assert_array_equal(j.read(RATE - 5, 2 * RATE + 7), audio[RATE - 5:2 * RATE + 7])
    np.testing.assert_array_equal(np.concatenate(list(j.iter_chunks(5000))), audio)


def test_parts_are_valid_wav_files_that_ffmpeg_decodes_exactly(tmp_path: Path) -> None:
    audio = noise(1.5, seed=1) * 0.5
    w = JournalWriter.create(tmp_path)
    w.append(audio)
    w.close()
    decoded = decode(Journal(w.folder).parts[0].path)
    np.testing.assert_array_equal(decoded, audio)


def test_sync_happens_every_second_of_wall_time(tmp_path: Path) -> None:
    clock = FakeClock()
    w = JournalWriter.create(tmp_path, clock=clock)
    chunk = np.zeros(1600, dtype=np.float32)  # 100 ms
    for i in range(50):
        w.append(chunk)
        clock.t += 0.1
        # Whatever was appended more than a second ago is durable.
        assert w.samples_written - w.samples_synced <= RATE + chunk.size
    assert w.syncs >= 4
    # The header on disk follows the last sync (a reader that ignores repair still sees it).
    header = Journal(w.folder).parts[0].path.read_bytes()[:HEADER_BYTES]
    assert int.from_bytes(header[40:44], "little") == w.samples_synced * 4
    w.close()


def test_repair_cuts_a_torn_sample_and_fixes_the_header(tmp_path: Path) -> None:
    audio = noise(0.5, seed=2)
    w = JournalWriter.create(tmp_path, sync_interval_s=1e9)
    w.append(audio)
    part = Journal(w.folder).parts[0].path
    os.close(w._fd)  # simulate the process dying without close()
    w._fd = None
    with open(part, "ab") as f:
        f.write(b"\x01\x02")  # half a sample
    j = Journal(w.folder)
    assert j.state == JournalState.RECORDING
    assert j.repair() == audio.size
    assert part.stat().st_size == HEADER_BYTES + audio.size * 4
    np.testing.assert_array_equal(decode(part), audio)
    assert j.repair() == audio.size  # idempotent


def test_injected_enospc_stops_with_a_clear_message_and_keeps_the_audio(tmp_path: Path) -> None:
    budget = {"bytes": HEADER_BYTES + 10_000 * 4 + 2}  # room for 10,000 samples and half of the next

    def write(fd: int, data) -> int:
        if budget["bytes"] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = min(len(data), budget["bytes"])
        budget["bytes"] -= n
        return os.write(fd, bytes(data[:n]))

    audio = noise(2.0, seed=3)
    w = JournalWriter.create(tmp_path, write=write)
    with pytest.raises(JournalFullError) as info:
        for chunk in np.array_split(audio, 20):
            w.append(chunk)
    message = str(info.value)
    assert "disk is full" in message and "\n" not in message and "dictate note recover" in message
    assert w.samples_written == 10_000
    with pytest.raises(JournalFullError):  # later appends fail the same way, without touching the file
        w.append(audio[:100])
    w.close()
    j = Journal(w.folder)
    assert j.state == JournalState.INTERRUPTED
    assert any("disk full" in n for n in j.sidecar["notices"])
    assert j.repair() == 10_000
    np.testing.assert_array_equal(j.read(), audio[:10_000])


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_really_full_file_system_keeps_every_whole_sample(tmp_path: Path) -> None:
    """A 256 KiB tmpfs when we may mount one; otherwise a file-size limit in a child process,
    which makes the kernel refuse the write the same way (EFBIG instead of ENOSPC)."""
    audio = noise(6.0, seed=4)  # 384 KB: does not fit
    np.save(tmp_path / "audio.npy", audio)
    mnt = tmp_path / "small"
    mounted = _mount_tmpfs(mnt, "256k")
    if not mounted:
        mnt.mkdir(exist_ok=True)
    script = textwrap.dedent(f"""
        import resource, signal, sys, numpy as np
        from dictate.audio.journal import JournalWriter, JournalFullError
        if {not mounted}:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
        audio = np.load({str(tmp_path / 'audio.npy')!r})
        w = JournalWriter.create({str(mnt)!r})
        try:
            for chunk in np.array_split(audio, 60):
                w.append(chunk)
        except JournalFullError as exc:
            print(exc)
            w.close()
            sys.exit(3)
        sys.exit(0)
    """)
    try:
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=Path(__file__).parents[1])
        assert proc.returncode == 3, proc.stderr
        assert "disk is full" in proc.stdout
        [j] = list_journals(mnt)
        n = j.repair()
        assert 30_000 < n < audio.size
        np.testing.assert_array_equal(j.read(), audio[:n])
    finally:
        if mounted:
            subprocess.run(["umount", str(mnt)], check=False)


KILL_SCRIPT = """
import sys, time, numpy as np
from dictate.audio.journal import JournalWriter
audio = np.load(sys.argv[1])
w = JournalWriter.create(sys.argv[2], {"source": "kill-test"})
chunk = 1600  # 100 ms, written every 25 ms: the recorder runs 4x faster than real time
for start in range(0, audio.size, chunk):
    w.append(audio[start:start + chunk])
    sys.stdout.write(f"{w.samples_written} {w.samples_synced}\\n")
    sys.stdout.flush()
    time.sleep(0.025)
time.sleep(60)
"""


def test_sigkill_loses_nothing_that_was_appended(tmp_path: Path) -> None:
    audio = noise(30.0, seed=5)
    np.save(tmp_path / "audio.npy", audio)
    root = tmp_path / "journals"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tmp_path / "audio.npy"), str(root)],
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    reported = 0
    synced = 0
    assert proc.stdout is not None
    for line in proc.stdout:
        reported, synced = map(int, line.split())
        if reported >= 6 * RATE:
            break
    [pending] = list_journals(root)
    assert pending.writer_alive()
    assert find_unfinished(root) == []  # a live recording is not offered for recovery
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    # At most a second of wall time (4 s of audio at this pace) was waiting for fsync.
    assert reported - synced <= 4 * RATE + 1600
    [j] = find_unfinished(root)
    assert j.state == JournalState.RECORDING and not j.writer_alive()
    n = j.repair()
    assert n >= reported
    np.testing.assert_array_equal(j.read(), audio[:n])
    assert j.sidecar["source"] == "kill-test"


def test_a_journal_without_its_sidecar_is_still_recoverable(tmp_path: Path) -> None:
    w = JournalWriter.create(tmp_path)
    w.append(noise(0.2))
    w.close()
    (w.folder / SIDECAR).unlink()
    [j] = find_unfinished(tmp_path)
    assert j.state == JournalState.RECORDING
    assert j.repair() == int(0.2 * RATE)


def test_start_failure_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError) as info:
        JournalWriter.create(blocker / "journals")
    assert "cannot start recording" in str(info.value)


def test_sidecar_is_json_with_what_the_note_is(tmp_path: Path) -> None:
    w = JournalWriter.create(tmp_path, {"engine": "whisper.cpp", "options": {"beam_size": 5}})
    data = json.loads((w.folder / SIDECAR).read_text())
    assert data["engine"] == "whisper.cpp" and data["options"] == {"beam_size": 5}
    assert data["pid"] == os.getpid() and data["sample_rate"] == RATE
    w.close()
