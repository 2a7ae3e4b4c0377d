"""`dictate toggle|start|stop|cancel`: voice typing in the running app, as its hotkey does
(and `dictate status|quit`).
For desktops where global hotkeys are impossible, these are what the user binds to a shortcut."""

from __future__ import annotations

import argparse
import sys

from dictate import ipc
from dictate.config import Paths

VERBS = {
    "toggle": "start voice typing, or stop it when it is on",
    "start": "start voice typing in the running app",
    "stop": "stop voice typing; the rest is transcribed and typed",
    "cancel": "stop voice typing and discard what was not typed yet",
    "status": "what the running app is doing (idle, listening, ...)",
    "quit": "quit the running app (what was said is still typed)",
}


def register(sub: argparse._SubParsersAction) -> None:
    for verb, help_text in VERBS.items():
        p = sub.add_parser(verb, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
        p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="wait at most S seconds for the app")
        p.set_defaults(func=run, command=verb)


def send(command: str, timeout_s: float = 5.0, **fields) -> int:
    """One request to the running app: its answer on stdout and 0, or a one-line error and 1."""
    try:
        answer = ipc.request(Paths.default(), {"command": command, **fields}, timeout_s=timeout_s)
    except ipc.NotRunning as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    return print_answer(answer)


def print_answer(answer: dict) -> int:
    message = str(answer.get("message", "")).strip()
    if answer.get("ok"):
        if message:
            sys.stdout.write(message + "\n")
        return 0
    sys.stderr.write(f"dictate: {message or 'the app refused the request'}\n")
    return 1


def run(args: argparse.Namespace) -> int:
    return send(args.command, args.timeout)
