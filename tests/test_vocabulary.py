"""Personal vocabulary: rare words from the user's own writing become the engine's hotwords.
What counts as rare (Whisper's English vocabulary, inflections, compounds, contractions), the
counting rules, `dictate vocabulary learn|show` on real files with a real config, and on the real
tiny.en weights: espeak-ng sentences with unusual names get a lower term error rate with the
learned list than without (held-out sentences that nothing was chosen on)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dictate import config as config_mod
from dictate.vocabulary import english_words, find_terms, is_common, learn, merged, words_of
from tests.conftest import REPO, dictate_env
from tests.support.vocabulary_set import REPORT, TARGETS, term_errors, writing_files


def test_whisper_knows_common_words_their_inflections_compounds_and_contractions() -> None:
    assert len(english_words()) > 20_000 and english_words()["the"] < 10
    for word in ("the", "Warren", "hackers", "dashboards", "toolchain", "well-known", "don't", "you're", "Nguyen"):
        assert is_common(word), word
    for word in ("Teitelman", "Siobhan", "Kubernetes", "Grafana", "Okafor", "PostgreSQL", "O'Brien"):
        assert not is_common(word), word


def test_terms_are_written_often_in_several_paragraphs_in_the_users_spelling() -> None:
    paragraphs = ["Teitelman wrote to Siobhan about the Grafana panels.",
                  "Teitelman's panels were fine; grafana was not.",
                  "Ask Teitelman and Siobhan. Grafana again, and Zyxwv once."]
    assert words_of("Teitelman's well-known ‘quote’") == ["Teitelman", "well-known", "quote"]
    terms = {t.text: t for t in find_terms(paragraphs)}
    assert set(terms) == {"Teitelman", "Grafana"}  # Siobhan twice, Zyxwv once: not yet vocabulary
    assert terms["Teitelman"].count == 3 and terms["Teitelman"].paragraphs == 3
    assert [t.text for t in find_terms(paragraphs, min_count=2)] == ["Grafana", "Teitelman", "Siobhan"]
    assert find_terms(["Grafana Grafana Grafana in one paragraph only."]) == []


def test_merged_keeps_the_users_list_and_adds_no_duplicates() -> None:
    assert merged(["PostgreSQL", "teitelman"], ["Teitelman", "Grafana", "postgresql"]) == [
        "PostgreSQL", "teitelman", "Grafana"]


def test_learns_every_name_from_mixed_files_and_nothing_else(tmp_path: Path) -> None:
    writing_files(tmp_path / "writing")
    learned = learn([str(tmp_path / "writing")])
    assert learned.files == 3
    assert sorted(t.text for t in learned.terms) == sorted(TARGETS)  # not "kubectl" from the code block


def test_names_in_short_lines_and_list_items_count(tmp_path: Path) -> None:
    """Sentences only would do for punctuation; a vocabulary wants the to-do list's names too."""
    (tmp_path / "todo.md").write_text("- call Okafor\n- Okafor: budget\n\nAsk Okafor.\n", encoding="utf-8")
    assert [t.text for t in learn([str(tmp_path / "todo.md")]).terms] == ["Okafor"]


def _run(args: list[str], env: dict, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dictate", *args], cwd=REPO, env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_cli_learn_proposes_then_applies_once(tmp_path: Path) -> None:
    writing_files(tmp_path / "writing")
    env = dictate_env()  # the test's own config folder (conftest)
    proposed = _run(["vocabulary", "learn", str(tmp_path / "writing")], env)
    assert proposed.returncode == 0, proposed.stderr
    assert "Teitelman" in proposed.stdout and "--apply" in proposed.stderr
    assert config_mod.load().engine.hotwords == []  # not applied without --apply or a yes
    applied = _run(["vocabulary", "learn", str(tmp_path / "writing"), "--apply"], env)
    assert applied.returncode == 0 and "added 20 terms" in applied.stderr, applied.stderr
    assert sorted(config_mod.load().engine.hotwords) == sorted(TARGETS)
    missing = _run(["vocabulary", "learn", str(tmp_path / "nowhere")], env)
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1


def test_adding_again_keeps_the_list_and_its_edits(capsys: pytest.CaptureFixture) -> None:
    from dictate import cli
    from dictate.vocabulary import add_hotwords

    assert cli.main(["vocabulary", "show"]) == 0
    assert capsys.readouterr().out == ""

    cfg = config_mod.load()
    cfg.engine.hotwords = ["teitelman", "PostgreSQL"]  # edited by hand
    assert add_hotwords(cfg, ["Teitelman", "Grafana"]) == ["Grafana"]
    assert add_hotwords(config_mod.load(), ["Grafana"]) == []
    assert config_mod.load().engine.hotwords == ["teitelman", "PostgreSQL", "Grafana"]
    assert cli.main(["vocabulary", "show"]) == 0
    assert capsys.readouterr().out.split() == ["teitelman", "PostgreSQL", "Grafana"]


@pytest.mark.slow
def test_learned_vocabulary_lowers_the_term_error_rate_on_real_tiny_en(tmp_path: Path) -> None:
    """REPORT sentences (not used to choose anything; the first five, for the suite's time) read by
    espeak-ng, transcribed by tiny.en with and without the list learned from the writing: a third
    of the terms or more that were missed are now right. Names written that were not said (a
    hint's known cost with tiny.en) are printed; bench_personal.py reports both on all of REPORT."""
    from dictate.config import Config, Paths
    from dictate.engines import create_engine
    from dictate.types import TranscribeOptions
    from tests.support.real_models import tiny_en_ct2
    from tests.support.speech import _espeak

    writing_files(tmp_path / "writing")
    hotwords = tuple(t.text for t in learn([str(tmp_path / "writing")]).terms)
    cfg = Config(paths=Paths.default())
    cfg.engine.compute_type, cfg.engine.device = "int8", "cpu"
    engine = create_engine("faster-whisper", cfg, model=str(tiny_en_ct2()))
    pad = np.zeros(8_000, np.float32)
    plain, hinted = [], []
    sentences = REPORT[:5]
    for sentence in sentences:
        audio = np.concatenate([pad, _espeak(sentence, "en-us", 160, tmp_path), pad])
        for out, words in ((plain, ()), (hinted, hotwords)):
            options = TranscribeOptions(language="en", beam_size=5, hotwords=words)
            out.append("".join(s.text for s in engine.transcribe(audio, options)).strip())
    without, with_list = term_errors(sentences, plain), term_errors(sentences, hinted, hotwords)
    print(f"term error rate: {without.rate:.2f} without, {with_list.rate:.2f} with the learned list "
          f"({with_list.targets} terms; {with_list.inserted} listed names written that were not said)")
    assert without.targets == with_list.targets == 10
    assert with_list.rate <= without.rate - 0.33, (plain, hinted)
