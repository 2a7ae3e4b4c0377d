"""`dictate desktop install|uninstall [--autostart]`: the application menu entry, the icon and
the session autostart entry for the current user (freedesktop desktops)."""

from __future__ import annotations

import argparse
import sys

from dictate import desktop


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("desktop", help="add dictate to the application menu (and start it with the session)",
                       description="Writes into the current user's XDG folders ($XDG_DATA_HOME/applications, "
                                   "$XDG_DATA_HOME/icons/hicolor, $XDG_CONFIG_HOME/autostart). Running it twice "
                                   "is harmless.")
    verbs = p.add_subparsers(dest="desktop_verb", metavar="ACTION", required=True)
    inst = verbs.add_parser("install", help="write the menu entry and the icon (--autostart: start with the session)")
    inst.add_argument("--autostart", action="store_true", help="also start the tray app when the session starts")
    inst.set_defaults(func=run_install)
    rm = verbs.add_parser("uninstall", help="remove the menu entry, the icon and the autostart entry "
                                           "(--autostart: only the autostart entry)")
    rm.add_argument("--autostart", action="store_true", help="remove only the autostart entry")
    rm.set_defaults(func=run_uninstall)


def _print(changes: list[desktop.Change]) -> None:
    for change in changes:
        sys.stdout.write(f"{change.action.value:<9} {change.path}\n")


def run_install(args: argparse.Namespace) -> int:
    changes = desktop.install(autostart=args.autostart)
    _print(changes)
    return 0


def run_uninstall(args: argparse.Namespace) -> int:
    _print(desktop.uninstall(autostart_only=args.autostart))
    return 0
