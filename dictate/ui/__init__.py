"""The desktop shell (tray icon, menu, windows) over the headless controller. The only package
that imports PySide6; the core never imports it."""
