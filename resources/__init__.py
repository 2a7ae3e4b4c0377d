"""dictate's icons (icons/*.svg: the app icon and one per state; icons/png/<size>/*.png the same
at the hicolor sizes, rendered by packaging/render-icons.py) and start/stop cues (sounds/*.wav).
Installed as the package `dictate.resources`; read through
`importlib.resources.files("dictate.resources")`. screenshots/ is for the README and the AppStream
metainfo, not in the wheel."""
