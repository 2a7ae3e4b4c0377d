"""The live overlay: a small window with the words as they are heard and an input level meter,
shown while a dictation runs.

It must never get in the way of the window being typed into: it takes no focus and no input,
stays above other windows and out of the taskbar. On X11 it is an override-redirect window (the
window manager never sees it, so it cannot activate or list it); elsewhere a frameless tool
window that does not accept focus. Everything here runs on the GUI thread, fed by the Bridge.

What it shows, by the controller's events:
  listening, model not ready yet  "Model loading… (your words are kept)"
  listening                       committed text, then the tentative words in grey
  transcribing                    the same, "Finishing…"
  a dictation done without text   "No speech heard" for a moment, then it hides
  cancelled, failed, idle         hidden (a failure has its own notification)
"""

from __future__ import annotations

import logging
from typing import Callable

from PySide6.QtCore import QPoint, QRect, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QCursor, QGuiApplication, QPainter, QPalette
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from dictate.ui.bridge import Bridge

log = logging.getLogger(__name__)

POSITIONS = ("bottom", "top", "cursor", "off")
WIDTH_PX = 460
EDGE_MARGIN_PX = 48
CURSOR_OFFSET_PX = 24
NO_SPEECH_SHOWN_MS = 1500
TEXT_KEPT = 240  # characters of committed text shown (the start scrolls away)
METER_FLOOR_DB = -60.0


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class LevelMeter(QWidget):
    """A horizontal bar for the input level in dBFS (-60 dB empty, 0 dB full)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db = METER_FLOOR_DB
        self.setObjectName("level")
        self.setAccessibleName("Input level")
        self.setMinimumHeight(6)
        self.setMaximumHeight(8)

    @property
    def fraction(self) -> float:
        return min(1.0, max(0.0, (self.db - METER_FLOOR_DB) / -METER_FLOOR_DB))

    def set_level(self, dbfs: float) -> None:
        self.db = float(dbfs)
        self.setAccessibleDescription(f"{self.db:.0f} dB")
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt name
        p = QPainter(self)
        r = self.rect()
        p.fillRect(r, QColor(255, 255, 255, 40))
        fill = QRect(r.left(), r.top(), int(r.width() * self.fraction), r.height())
        # Green for speech levels, amber near clipping.
        p.fillRect(fill, QColor("#e0a030") if self.db > -6 else QColor("#4caf50"))
        p.end()


class Overlay(QWidget):
    def __init__(self, bridge: Bridge, *, position: str = "bottom",
                 model_ready: Callable[[], bool] = lambda: True) -> None:
        super().__init__(None)
        if position not in POSITIONS:
            raise ValueError(f"overlay position {position!r}: choose from {', '.join(POSITIONS)}")
        self.position = position
        self._model_ready = model_ready
        self._committed = ""
        self._partial = ""
        self._state = "idle"
        self._heard = False  # anything committed in this dictation
        self.setObjectName("dictate-overlay")
        self.setWindowTitle("dictate-overlay")
        self.setAccessibleName("dictate live text")
        flags = (Qt.WindowType.Tool | Qt.WindowType.FramelessWindowHint | Qt.WindowType.WindowStaysOnTopHint
                 | Qt.WindowType.WindowDoesNotAcceptFocus | Qt.WindowType.WindowTransparentForInput)
        if QGuiApplication.platformName() == "xcb":
            flags |= Qt.WindowType.X11BypassWindowManagerHint
        self.setWindowFlags(flags)
        self.setAttribute(Qt.WidgetAttribute.WA_ShowWithoutActivating, True)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setAutoFillBackground(True)
        pal = self.palette()
        pal.setColor(QPalette.ColorRole.Window, QColor(30, 30, 34, 235))
        pal.setColor(QPalette.ColorRole.WindowText, QColor("#f0f0f0"))
        self.setPalette(pal)

        frame = QFrame(self)
        self.status = QLabel()
        self.status.setObjectName("status")
        self.status.setAccessibleName("Dictation state")
        self.text = QLabel()
        self.text.setObjectName("text")
        self.text.setAccessibleName("Live text")
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.RichText)
        font = self.text.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)  # follows the system font, a little larger
        self.text.setFont(font)
        self.meter = LevelMeter()
        layout = QVBoxLayout(frame)
        layout.setContentsMargins(14, 10, 14, 10)
        layout.addWidget(self.status)
        layout.addWidget(self.text)
        layout.addWidget(self.meter)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(frame)
        self.setFixedWidth(WIDTH_PX)

        self._hide_timer = QTimer(self)
        self._hide_timer.setSingleShot(True)
        self._hide_timer.timeout.connect(self._hide)
        # While the model loads, the status line follows it without an event to say so.
        self._poll = QTimer(self)
        self._poll.setInterval(250)
        self._poll.timeout.connect(self._refresh)

        bridge.state_changed.connect(self.on_state)
        bridge.partial.connect(self.on_partial)
        bridge.committed.connect(self.on_committed)
        bridge.level.connect(self.on_level)
        bridge.dictation_done.connect(self.on_done)

    # -- events (GUI thread) ------------------------------------------------------------------
    def on_state(self, state: str) -> None:
        previous, self._state = self._state, state
        if state == "listening":
            if previous not in ("listening", "transcribing") or not self.isVisible():
                self._begin()
            self._refresh()
        elif state == "transcribing":
            self._refresh()
        elif not self._hide_timer.isActive():  # idle, note-recording, error, loading
            self._hide()

    def on_partial(self, text: str) -> None:
        self._partial = text
        self._refresh()

    def on_committed(self, text: str) -> None:
        self._heard = self._heard or bool(text.strip())
        self._committed = (self._committed + text)[-TEXT_KEPT:]
        self._partial = ""
        self._refresh()

    def on_level(self, dbfs: float) -> None:
        if self.isVisible():
            self.meter.set_level(dbfs)

    def on_done(self, status: str, text: str) -> None:
        if status == "done" and not text.strip() and not self._heard and self.isVisible():
            self.status.setText("No speech heard")
            self.text.setText("<span style='color:#b0b0b0'>Nothing was typed.</span>")
            log.info("ui: overlay: no speech heard")
            self._hide_timer.start(NO_SPEECH_SHOWN_MS)
        else:
            self._hide()

    # -- showing and hiding -------------------------------------------------------------------
    def _begin(self) -> None:
        if self.position == "off":  # turned off in the settings while the app runs
            return
        self._hide_timer.stop()
        self._committed, self._partial, self._heard = "", "", False
        self.meter.set_level(METER_FLOOR_DB)
        self._refresh()
        self.adjustSize()
        self.move(self.place())
        self.show()
        self._poll.start()
        log.info("ui: overlay shown (%s)", self.position)

    def _hide(self) -> None:
        self._hide_timer.stop()
        self._poll.stop()
        if self.isVisible():
            self.hide()
            log.info("ui: overlay hidden")

    def status_text(self) -> str:
        if self._state == "transcribing":
            return "Finishing…"
        if not self._model_ready():
            return "Model loading… (your words are kept)"
        return "Listening…"

    def _refresh(self) -> None:
        if self._hide_timer.isActive():
            return  # "no speech heard" stays until it goes
        self.status.setText(self.status_text())
        shown = self._committed.lstrip()
        html = _html(shown)
        if self._partial:
            html += (" " if shown and not shown.endswith(" ") else "") + \
                f"<span style='color:#9a9a9a'>{_html(self._partial)}</span>"
        self.text.setText(html or "<span style='color:#9a9a9a'>…</span>")
        if self.isVisible():
            self.adjustSize()
            if self.position != "cursor":  # an edge overlay grows upwards from the bottom edge
                self.move(self.place())

    def place(self) -> QPoint:
        """Top-left corner for the window: centred near an edge of the screen with the pointer,
        or beside the pointer, always inside that screen."""
        pointer = QCursor.pos()
        screen = QGuiApplication.screenAt(pointer) or QGuiApplication.primaryScreen()
        area = screen.availableGeometry() if screen is not None else QRect(0, 0, 1280, 800)
        size = self.sizeHint().expandedTo(QSize(WIDTH_PX, 0))
        if self.position == "cursor":
            x, y = pointer.x() + CURSOR_OFFSET_PX, pointer.y() + CURSOR_OFFSET_PX
        elif self.position == "top":
            x, y = area.center().x() - size.width() // 2, area.top() + EDGE_MARGIN_PX
        else:
            x, y = area.center().x() - size.width() // 2, area.bottom() - EDGE_MARGIN_PX - size.height()
        x = max(area.left(), min(x, area.right() - size.width()))
        y = max(area.top(), min(y, area.bottom() - size.height()))
        return QPoint(x, y)


def create_overlay(bridge: Bridge, position: str, model_ready: Callable[[], bool]) -> Overlay | None:
    """The overlay, or None when the settings turned it off."""
    if position == "off":
        return None
    return Overlay(bridge, position=position, model_ready=model_ready)
