"""`dictate punctuation train|apply|eval` end to end, as the user runs them (a real subprocess for
the main path), with the config and data folders of the test (conftest's isolated_dirs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dictate import config
from dictate.cli import main
from dictate.punctuation import load_model, strip_marks
from tests.conftest import REPO, dictate_env
from tests.support import synthetic_authors

FIXTURES = Path(__file__).parent / "fixtures" / "punctuation"


@pytest.fixture()
def writing(tmp_path: Path) -> Path:
    """A folder of one author's writing in several formats."""
    folder = tmp_path / "writing"
    folder.mkdir()
    paras = synthetic_authors.paragraphs("terse", 12_000)
    third = len(paras) // 3
    (folder / "essay.txt").write_text("\n\n".join(paras[:third]), encoding="utf-8")
    (folder / "notes.md").write_text("# Notes\n\n" + "\n\n".join(paras[third:2 * third]), encoding="utf-8")
    (folder / "blog.html").write_text("<html><body>" + "".join(f"<p>{p}</p>" for p in paras[2 * third:])
                                      + "</body></html>", encoding="utf-8")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")  # not text: ignored
    return folder


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dictate", *args], input=stdin, capture_output=True, text=True,
                          cwd=REPO, env=dictate_env(), timeout=120)


def test_train_apply_eval_end_to_end(writing: Path, tmp_path: Path) -> None:
    trained = _run("punctuation", "train", str(writing))
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout == ""  # messages go to stderr
    assert "read 12," in trained.stderr and "3 files" in trained.stderr and "active" in trained.stderr

    cfg = config.load()
    assert cfg.punctuation.enabled is True
    model_path = Path(cfg.punctuation.model_path)
    assert model_path == (cfg.paths.data_dir / "punctuation" / "personal.npz").resolve()
    assert load_model(model_path).meta["words"] >= 12_000

    held_out = synthetic_authors.paragraphs("terse", 1_500, seed=9)
    bare = "\n".join(strip_marks(p) for p in held_out) + "\n"
    applied = _run("punctuation", "apply", stdin=bare)  # the active model, text from stdin
    assert applied.returncode == 0, applied.stderr
    out_lines = applied.stdout.split("\n")
    assert out_lines[-1] == "" and len(out_lines) - 1 == len(held_out)
    for line, ref in zip(out_lines, held_out):
        assert strip_marks(line).split() == strip_marks(ref).split()
    assert sum(a == b for a, b in zip(out_lines, held_out)) >= 0.8 * len(held_out)  # mostly exact: the same habits

    reference = tmp_path / "reference.txt"
    reference.write_text("\n".join(held_out), encoding="utf-8")
    evaluated = _run("punctuation", "eval", str(model_path), str(reference))
    assert evaluated.returncode == 0, evaluated.stderr
    table = evaluated.stdout
    for needle in ("comma", "period", "dash", "all", "Oxford-comma rate", "mean sentence words", "per 1000 words"):
        assert needle in table
    all_row = next(line for line in table.splitlines() if line.startswith("all"))
    assert float(all_row.split()[-1]) > 0.9


def test_apply_file_and_model_option(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = tmp_path / "kjv.npz"
    assert main(["punctuation", "train", str(FIXTURES / "kjv_genesis.txt"), "--out", str(model), "--no-activate"]) == 0
    assert model.is_file() and not config.load().punctuation.model_path  # not made active
    src = tmp_path / "in.txt"
    src.write_text("and god said let there be light and there was light\n\nin the beginning god created the earth",
                   encoding="utf-8")
    capsys.readouterr()
    assert main(["punctuation", "apply", "--model", str(model), str(src)]) == 0
    out = capsys.readouterr().out
    lines = out.split("\n")
    assert lines[0].startswith("And God said") and lines[0].endswith(".")
    assert lines[1] == ""  # blank lines stay
    assert lines[2].startswith("In the beginning God created")


@pytest.mark.parametrize("args, message", [
    (["punctuation", "apply"], "no punctuation model is active"),
    (["punctuation", "apply", "--model", "{tmp}/missing.npz"], "not found"),
    (["punctuation", "apply", "--model", "{tmp}/junk.npz"], "not a punctuation model or is damaged"),
    (["punctuation", "eval", "{tmp}/junk.npz", "{fixtures}/kjv_genesis.txt"], "not a punctuation model or is damaged"),
    (["punctuation", "train", "{tmp}/tiny.txt"], "at least 5,000 are needed"),
    (["punctuation", "train", "{tmp}/binary.txt"], "looks like a binary file"),
    (["punctuation", "train", "{tmp}/latin1.txt"], "not UTF-8 text"),
    (["punctuation", "train", "{tmp}/nothing-here"], "no such file or folder"),
])
def test_bad_input_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str],
                                          message: str) -> None:
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (tmp_path / "tiny.txt").write_text("A few words of my own writing, not enough.\n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "latin1.txt").write_bytes("d\xe9j\xe0 vu".encode("latin-1"))
    argv = [a.format(tmp=tmp_path, fixtures=FIXTURES) for a in args]
    capsys.readouterr()
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = [line for line in captured.err.splitlines() if line.startswith("dictate: ") and message in line]
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err


def test_apply_binary_input_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model = tmp_path / "m.npz"
    assert main(["punctuation", "train", str(FIXTURES / "jargon_file.txt"), "--out", str(model), "--no-activate"]) == 0
    binary = tmp_path / "in.bin"
    binary.write_bytes(b"\x00\xff\x00\xff")
    capsys.readouterr()
    assert main(["punctuation", "apply", "--model", str(model), str(binary)]) == 1
    assert "binary" in capsys.readouterr().err
