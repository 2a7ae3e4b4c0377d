"""Another application to drag files from: a small window that starts a QDrag with file URLs
when the mouse is pressed on it, as a file manager does. Run under a real X server:

    python -m tests.support.drag_source X Y FILE...     # the window's top-left at (X, Y)

It prints "ready WID" once shown and "drag done ACTION" when the drop has ended."""

from __future__ import annotations

import sys

from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import QApplication, QLabel


class Source(QLabel):
    def __init__(self, files: list[str]) -> None:
        super().__init__(f"{len(files)} files: drag me")
        self.files = files
        self.setWindowTitle("drag-source")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setStyleSheet("background: #dde; font-size: 14px;")

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt name
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(f) for f in self.files])
        drag = QDrag(self)
        drag.setMimeData(mime)
        print("drag started", flush=True)
        action = drag.exec(Qt.DropAction.CopyAction)  # XDND with the window under the pointer
        print(f"drag done {action.name}", flush=True)


def main() -> int:
    x, y, files = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    app = QApplication(["drag-source"])
    w = Source(files)
    w.setGeometry(x, y, 220, 140)
    w.show()
    app.processEvents()
    print(f"ready {int(w.winId())}", flush=True)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
