"""`dictate secrets set|delete|status NAME`: API keys in the OS keyring.

A secret is never a command-line argument (it would land in shell history and `ps`): `set` reads
it from the terminal without echo, or from standard input when that is a pipe."""

from __future__ import annotations

import argparse
import getpass
import sys

from dictate import secrets
from dictate.commands.common import err
from dictate.errors import SecretsError

_NAMES = [k.value for k in secrets.SecretKey]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("secrets", help="store, check and delete API keys in the OS keyring",
                       description="API keys live in the OS keyring only. `set` reads the key from the terminal "
                                   "without echo, or from standard input when it is piped.")
    verbs = p.add_subparsers(dest="secrets_verb", metavar="ACTION", required=True)
    for name, help_text, func in (("set", "store a key (prompted, or read from standard input)", run_set),
                                  ("delete", "remove a key", run_delete),
                                  ("status", "whether a key is stored (never shows it)", run_status)):
        v = verbs.add_parser(name, help=help_text)
        v.add_argument("name", nargs="?" if name == "status" else None, choices=_NAMES, metavar="NAME",
                       help=f"which key: {', '.join(_NAMES)}")
        v.set_defaults(func=func)


def _read_secret(name: str) -> str:
    if sys.stdin is not None and sys.stdin.isatty():
        try:
            value = getpass.getpass(f"{name} key (not shown): ")
        except EOFError:
            value = ""
    else:
        # A pipe or a file: take the first line, so `printf KEY | dictate secrets set remote` and
        # `dictate secrets set remote < keyfile` both work; surrounding whitespace is never part of a key.
        data = sys.stdin.read() if sys.stdin is not None else ""
        value = data.splitlines()[0] if data.strip() else ""
    value = value.strip()
    if not value:
        raise SecretsError(f"no key given for {name!r}; nothing stored")
    return value


def run_set(args: argparse.Namespace) -> int:
    key = secrets.parse_key(args.name)
    secrets._keyring()  # fail before prompting when there is nowhere safe to keep the key
    secrets.set(key, _read_secret(key.value))
    err(f"stored the {key.value} key in the keyring ({secrets.backend_name()})")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    key = secrets.parse_key(args.name)
    if secrets.delete(key):
        err(f"deleted the {key.value} key from the keyring")
    else:
        err(f"no {key.value} key was stored")
    return 0


def run_status(args: argparse.Namespace) -> int:
    """One line per key on stdout: `NAME stored|not stored`; the backend on stderr. Exit 1 without a backend."""
    keys = [secrets.parse_key(args.name)] if args.name else list(secrets.SecretKey)
    backend = secrets.backend_name()
    if backend == "none":
        raise SecretsError(secrets.no_backend_message())
    err(f"keyring backend: {backend}")
    for key in keys:
        sys.stdout.write(f"{key.value}\t{'stored' if secrets.get(key) else 'not stored'}\n")
    return 0
