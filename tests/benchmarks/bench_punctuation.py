"""Personal punctuation model figures: training time on 200K words, applying speed (words/s),
model size, and micro-F1 of a personal vs a generic model on held-out text of several authors.

Run: python tests/benchmarks/bench_punctuation.py   (prints figures; asserts nothing)"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dictate.punctuation import evaluate, strip_marks, train_model  # noqa: E402
from dictate.punctuation.corpus import read_file  # noqa: E402
from dictate.types import Word  # noqa: E402
from tests.support import synthetic_authors  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "punctuation"
REAL = {"bierce": "bierce_devils_dictionary.txt", "kjv": "kjv_genesis.txt", "jargon": "jargon_file.txt"}


def _words(paragraphs: list[str]) -> int:
    return sum(len(p.split()) for p in paragraphs)


def _corpus(words: int) -> list[str]:
    """Real prose of three authors, topped up with synthetic authors' text to `words` words (and
    cut there: the real prose alone is ~60K words)."""
    out = [p for f in REAL.values() for p in read_file(FIXTURES / f)]
    seed = 0
    while _words(out) < words:
        for author in synthetic_authors.AUTHORS:
            out.extend(synthetic_authors.paragraphs(author, 20_000, seed=seed))
        seed += 1
    kept, n = [], 0
    for p in out:
        if n >= words:
            break
        kept.append(p)
        n += len(p.split())
    return kept


def bench_training(sizes: tuple[int, ...] = (50_000, 100_000, 200_000)) -> object:
    """Training time by corpus size (wall and this process's CPU time: on a busy machine the
    wall time also counts the other programs). The goal is under 10 s for 200K words."""
    for words in sizes:
        corpus = _corpus(words)
        n = _words(corpus)
        t0, c0 = time.perf_counter(), time.process_time()
        model = train_model(corpus)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"training: {n:,} words in {elapsed:.2f} s wall, {cpu:.2f} s CPU ({n / elapsed:,.0f} words/s; "
              f"{model.meta['options']['epochs']} passes; goal < 10 s for 200K)")
    return model, corpus


def bench_apply(model, corpus: list[str]) -> None:
    bare = "\n".join(strip_marks(p) for p in corpus)
    n = len(bare.split())
    model.punctuate_text(bare[:10_000])  # warm the word-hash cache the way a running app has it
    t0 = time.perf_counter()
    model.punctuate_text(bare)
    elapsed = time.perf_counter() - t0
    print(f"apply (text): {n:,} words in {elapsed:.2f} s = {n / elapsed:,.0f} words/s (goal >= 100,000)")
    cold = type(model)(model.weights, model.offsets, model.bits, model.truecase, model.cap_after, model.forms)
    t0 = time.perf_counter()
    cold.punctuate_text(bare)
    elapsed = time.perf_counter() - t0
    print(f"apply (text, cold hash cache): {n / elapsed:,.0f} words/s")
    para = bare.split("\n")[:400]
    timed = []
    for p in para:
        words, t = [], 0.0
        for w in p.split():
            words.append(Word(t, t + 0.3, " " + w))
            t += 0.35
        timed.append(words)
    m = sum(len(w) for w in timed)
    t0 = time.perf_counter()
    for words in timed:
        model.punctuate_words(words, 0.3)
    elapsed = time.perf_counter() - t0
    print(f"apply (engine words with pauses, one paragraph per call): {m / elapsed:,.0f} words/s")


def bench_size(model) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = model.save(Path(tmp) / "m.npz")
        size = path.stat().st_size
    print(f"model size: {size / 1e6:.2f} MB on disk (goal <= 10 MB), "
          f"{model.weights.nbytes / 1e6:.1f} MB of weights in memory")


def bench_personal_vs_generic() -> None:
    print("micro-F1 on held-out 20% (personal: trained on the author's other 80%; "
          "generic: trained on the other authors' 80% portions)")
    texts = {name: read_file(FIXTURES / f) for name, f in REAL.items()}
    for author in synthetic_authors.AUTHORS:
        texts[f"synthetic-{author}"] = synthetic_authors.paragraphs(author, 20_000)
    splits = {name: (ps[: int(len(ps) * 0.8)], ps[int(len(ps) * 0.8):]) for name, ps in texts.items()}
    groups = [list(REAL), [f"synthetic-{a}" for a in synthetic_authors.AUTHORS]]
    for group in groups:
        for author in group:
            train, held_out = splits[author]
            others = [p for name in group if name != author for p in splits[name][0]]
            personal = evaluate(train_model(train), held_out)
            generic = evaluate(train_model(others), held_out)
            ref = personal.reference.marks_per_1000

            def dist(style) -> float:
                return sum(abs(style.marks_per_1000[k] - ref[k]) for k in ref)

            print(f"  {author:<18} personal {personal.micro.f1:.3f}  generic {generic.micro.f1:.3f}  "
                  f"(mark-rate distance to the author: {dist(personal.predicted):.1f} vs {dist(generic.predicted):.1f} "
                  f"per 1000 words; {_words(train):,} training words)")


def bench_pause_fusion() -> None:
    """Words aligned with pauses that follow the reference marks (0.6 s at sentence ends, 0.25 s at
    other marks, 0.04 s otherwise, log-normal jitter sigma 0.5): micro-F1 by pause weight."""
    import numpy as np

    from dictate.punctuation import parse
    from dictate.punctuation.evaluate import score
    from dictate.punctuation.text import SENTENCE_END

    print("pause fusion (simulated aligned pauses), micro-F1 by pause_weight:")
    for name in ("kjv", "bierce"):
        ps = read_file(FIXTURES / REAL[name])
        k = int(len(ps) * 0.8)
        model = train_model(ps[:k])
        rng = np.random.default_rng(7)
        data = []
        for para in ps[k:]:
            ref = parse(para)
            words, t = [], 0.0
            for w, lab in zip(ref.words, ref.labels):
                words.append(Word(t, t + 0.25, " " + w))
                t += 0.25 + (0.6 if lab in SENTENCE_END else 0.25 if lab else 0.04) * float(rng.lognormal(0, 0.5))
            data.append((ref.labels, words))
        figures = []
        for weight in (0.0, 0.3, 1.0, 2.0):
            reference = [lab for labels, _ in data for lab in labels]
            predicted = [lab for _, ws in data for lab in model.probabilities_for_words(ws, weight)[1].labels]
            figures.append(f"{weight}: {score(reference, predicted)[1].f1:.3f}")
        print(f"  {name:<8}", "  ".join(figures))


def main() -> None:
    model, corpus = bench_training()
    bench_apply(model, corpus)
    bench_size(model)
    bench_personal_vs_generic()
    bench_pause_fusion()


if __name__ == "__main__":
    main()
