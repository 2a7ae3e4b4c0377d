"""`dictate doctor [--json]`: what works on this machine and what does not, one line each with a
fix; with --json, the same checks for installers and packagers, each marked required or optional
for the features the config enables. The checks live in dictate.diagnostics."""

from __future__ import annotations

import argparse
import json
import sys

from dictate import diagnostics
from dictate.commands.common import load_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check audio, engines, GPU, typing, hotkeys, keyring and models",
                       description="Exit status 1 when a check required by the configured features fails.")
    p.add_argument("--json", action="store_true",
                   help="one JSON object: version, ok, config, and checks (name, ok, required, feature, detail, fix)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args)
    results = diagnostics.run_checks(cfg)
    if args.json:
        sys.stdout.write(json.dumps(diagnostics.report(cfg, results), indent=2) + "\n")
    else:
        for c in results:
            status = "ok  " if c.ok else ("FAIL" if c.required else "warn")
            line = f"{status}  {c.name:<24} {c.detail}"
            if not c.ok and c.fix:
                line += f"\n      fix: {c.fix}"
            sys.stdout.write(line + "\n")
    return 0 if diagnostics.healthy(results) else 1
