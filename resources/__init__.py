"""dictate's icons (icons/*.svg: the app icon and one per state) and start/stop cues
(sounds/*.wav). Installed as the package `dictate.resources`; read through
`importlib.resources.files("dictate.resources")`. screenshots/ is for the README only."""
