"""A user's writing full of unusual names and terms, and spoken sentences that use them, for
measuring the learned vocabulary on real weights (tests and bench_personal.py).

- `writing_files(folder)` writes the user's notes (Markdown, plain text and an e-mail).
- TUNE sentences were looked at while building the feature (hotwords against an initial
  prompt); REPORT sentences were written afterwards and are used only to measure: nothing was
  chosen on them. None of the sentences is in the writing.

Term error rate: the share of the target terms (the names in TARGETS that a sentence contains)
that are not in the transcript as a word, exactly (case-insensitive, punctuation around words
ignored, inner apostrophes and hyphens kept)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

TARGETS = ("Teitelman", "Siobhan", "Okonkwo", "Tlaxcala", "Grafana", "Wojciech", "Kubernetes", "Aoife", "Okafor",
           "Thelonious", "Yevgeny", "Marchetti", "Pemberton", "Kowalczyk", "Ferreira", "Dunleavy", "Babajide",
           "Szczepanski", "Brzezinski", "Niamh")

_NOTES = [
    "Siobhan and Okonkwo planned the visit to Tlaxcala for the spring, and Teitelman agreed to come along.",
    "The Grafana alerts woke Wojciech again at night, so he moved the Kubernetes jobs to the other cluster.",
    "Aoife thinks Okafor should lead the review, because he wrote most of the Kubernetes operators last year.",
    "Thelonious sent the recordings to Yevgeny, who wants to use them in the lecture about jazz piano.",
    "Marchetti and Pemberton still disagree about the budget, and Kowalczyk is tired of being in the middle.",
    "Ferreira booked the rooms, Dunleavy ordered the food, and Babajide will print the programmes on Monday.",
    "Szczepanski called about the contract; Brzezinski wants the changes in writing before Friday.",
    "Niamh is back from leave next week, and Siobhan will hand the Tlaxcala files over to her.",
    "Teitelman reviewed the Grafana dashboards and found three panels that nobody had looked at in months.",
    "Wojciech and Okafor paired on the upgrade; the Kubernetes nodes now restart one at a time.",
    "Okonkwo wrote a long note about the trip, and Aoife added the photographs from the market.",
    "Yevgeny and Thelonious are playing together at the festival, and Marchetti bought tickets for everyone.",
    "Pemberton asked Kowalczyk for the numbers again, and Ferreira finally sent them herself.",
    "Dunleavy and Babajide rewrote the guide for new staff, and Niamh read it twice before it went out.",
    "Szczepanski and Brzezinski met in the morning and signed the contract after a short walk.",
    "Teitelman, Siobhan and Okonkwo want to go back to Tlaxcala next year for the whole month.",
    "Grafana now shows the queue length, which Wojciech says is the one number that matters.",
    "Aoife, Okafor and Thelonious will share the office by the window when the move is done.",
    "Yevgeny wrote to Marchetti and Pemberton about the concert, and Kowalczyk forwarded it to me.",
    "Ferreira, Dunleavy and Babajide are the first names on the list for the training in June.",
    "Szczepanski wants a copy of everything; Brzezinski wants only the summary, and Niamh wants neither.",
]

_PLAIN = [
    "Most of the week went into ordinary work: meetings, reviews and a long afternoon of reading.",
    "The weather was cold and grey, and the trains were late every morning, as they always are in winter.",
    "I should write shorter notes. Nobody reads the long ones, and I forget what I meant by them.",
]


def writing_files(folder: Path) -> list[Path]:
    """The user's writing as a few files of different kinds."""
    folder.mkdir(parents=True, exist_ok=True)
    md = folder / "notes.md"
    md.write_text("# Notes\n\n" + "\n\n".join(_NOTES[:11]) + "\n\n```\nkubectl get pods\n```\n", encoding="utf-8")
    txt = folder / "journal.txt"
    txt.write_text("\n\n".join(_PLAIN + _NOTES[11:18]) + "\n", encoding="utf-8")
    eml = folder / "sent.eml"
    eml.write_text("From: me@example.org\nTo: team@example.org\nSubject: this week\n"
                   "Content-Type: text/plain; charset=utf-8\n\n" + "\n\n".join(_NOTES[18:]) + "\n\n-- \nMe\n",
                   encoding="utf-8")
    return [md, txt, eml]


TUNE = [
    "Yesterday Siobhan met Okonkwo at the station before lunch.",
    "The report from Teitelman arrived late on Friday evening.",
    "We flew to Tlaxcala and then drove on to the coast.",
    "Wojciech fixed the Grafana dashboard for the whole team.",
    "Aoife and Okafor will review the Kubernetes cluster tomorrow.",
]

REPORT = [
    "Thelonious asked Yevgeny to bring the sheet music on Sunday.",
    "Marchetti told Pemberton that the budget was approved at last.",
    "Kowalczyk and Ferreira are flying home on the same plane.",
    "Dunleavy gave Babajide the keys to the new office.",
    "Szczepanski and Brzezinski argued about the price for an hour.",
    "Niamh said that Teitelman had already left for the airport.",
    "The Kubernetes upgrade kept Wojciech busy until midnight.",
    "Okonkwo showed Siobhan the old map of Tlaxcala.",
]


@dataclass(frozen=True)
class TermScore:
    targets: int
    missed: int
    inserted: int  # listed terms written that were not said

    @property
    def rate(self) -> float:
        return self.missed / self.targets if self.targets else 0.0


def words(text: str) -> list[str]:
    return [w.strip("'’-") for w in re.findall(r"[\w'’-]+", text.casefold()) if w.strip("'’-")]


def term_errors(sentences: list[str], transcripts: list[str], listed: tuple[str, ...] = ()) -> TermScore:
    targets = missed = inserted = 0
    for sentence, heard in zip(sentences, transcripts):
        said = set(words(sentence))
        got = words(heard)
        for term in TARGETS:
            if term.casefold() in said:
                targets += 1
                missed += term.casefold() not in got
        inserted += sum(1 for t in listed if t.casefold() in got and t.casefold() not in said)
    return TermScore(targets, missed, inserted)
