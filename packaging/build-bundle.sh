#!/usr/bin/env bash
# Build the one-folder bundle dist/dictate/ with PyInstaller from this checkout (after
# `pip install -e .` or `pip install .`, plus `pip install pyinstaller`), then smoke-test it.
#   bash packaging/build-bundle.sh [DIST_DIR [WORK_DIR]]
set -euo pipefail
cd "$(dirname "$0")/.."
dist="${1:-dist}"
work="${2:-build/pyinstaller}"
python3 -m PyInstaller --noconfirm --clean --log-level WARN --distpath "$dist" --workpath "$work" \
  packaging/dictate.spec
"$dist/dictate/dictate" --version
du -sh "$dist/dictate"
