"""Runtime hook: sounddevice finds PortAudio through ctypes.util.find_library, which knows only
the system's libraries. The system's PortAudio is preferred (it is built for the local sound
setup); where there is none, the copy inside the bundle is used."""

import ctypes.util
import os
import sys

_BUNDLED = os.path.join(getattr(sys, "_MEIPASS", os.path.dirname(sys.executable)), "libportaudio.so.2")
_find_library = ctypes.util.find_library


def _find_with_bundled(name):
    found = _find_library(name)
    if found is None and name == "portaudio" and os.path.exists(_BUNDLED):
        return _BUNDLED
    return found


ctypes.util.find_library = _find_with_bundled
