"""One module per CLI verb; each has `register(subparsers)` and sets `func` on its parser.
cli.py only assembles them, so verbs are added without touching each other."""

VERB_MODULES = (
    "transcribe",
    "files",
    "listen",
    "note",
    "models",
    "punctuation",
    "secrets",
    "doctor",
    "desktop",
    "control",
    "history",
    "dataset",
    "eval",
    "vocabulary",
)
