"""Render the SVG icons in resources/icons/ to PNG at the freedesktop (hicolor) sizes, into
resources/icons/png/<size>/<name>.png. Those PNGs ship in the wheel for icon themes and
software centres that do not read SVG. Run again after changing an SVG:

    QT_QPA_PLATFORM=offscreen python3 packaging/render-icons.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"


def render(icons: Path = ICONS, sizes: tuple[int, ...] = SIZES) -> list[Path]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QByteArray, QRectF, Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication(["render-icons"])  # noqa: F841 - Qt needs it
    written = []
    for svg in sorted(icons.glob("*.svg")):
        renderer = QSvgRenderer(QByteArray(svg.read_bytes()))
        if not renderer.isValid():
            raise SystemExit(f"{svg}: not a valid SVG")
        for size in sizes:
            image = QImage(size, size, QImage.Format.Format_ARGB32)
            image.fill(Qt.GlobalColor.transparent)
            painter = QPainter(image)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            renderer.render(painter, QRectF(0, 0, size, size))
            painter.end()
            out = icons / "png" / str(size) / f"{svg.stem}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            if not image.save(str(out), "PNG"):
                raise SystemExit(f"cannot write {out}")
            written.append(out)
    return written


if __name__ == "__main__":
    files = render()
    sys.stdout.write(f"{len(files)} PNG files in {ICONS / 'png'}\n")
