"""Another program owning the X clipboard with several formats at once, for restore tests.

    python tests/support/clipboard_owner.py TEXT PNG_FILE

A Qt app puts one QMimeData on the CLIPBOARD holding TEXT (Qt offers it as text/plain,
UTF8_STRING, STRING ...), the PNG file's bytes as image/png and a private application/x-dictate-test
format; it prints "ready" and serves the clipboard until it loses it or is terminated."""

from __future__ import annotations

import os
import sys


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    from PySide6.QtCore import QMimeData, QTimer
    from PySide6.QtGui import QClipboard, QGuiApplication

    text, png_path = sys.argv[1], sys.argv[2]
    app = QGuiApplication(["clipboard-owner"])
    data = QMimeData()
    data.setText(text)
    with open(png_path, "rb") as f:
        data.setData("image/png", f.read())
    data.setData("application/x-dictate-test", b"\x00private\xffbytes")
    clipboard = app.clipboard()
    clipboard.setMimeData(data, QClipboard.Mode.Clipboard)

    def announce() -> None:
        sys.stdout.write("ready\n")
        sys.stdout.flush()

    QTimer.singleShot(0, announce)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
