#!/usr/bin/env bash
# System libraries dictate needs on Debian/Ubuntu (PortAudio for the microphone, the X/xcb
# libraries Qt's desktop plugin loads, and the tools that type into other windows).
# With --test, also what the test suite uses: a virtual screen, a sound server with a virtual
# microphone, a tray host, a notification server, a Secret Service keyring and a speech synthesizer.
set -euo pipefail

APP=(
  libportaudio2
  libegl1 libgl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0
  libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-xfixes0 libxcb-sync1 libxcb-xkb1 libxcb-shm0
  libx11-xcb1 libfontconfig1 libglib2.0-0 libdbus-1-3 fonts-dejavu-core
  xdotool xclip
)
TEST=(
  xvfb xauth x11-utils trayer
  xterm
  pulseaudio pulseaudio-utils libasound2-plugins
  gnome-keyring dbus-daemon dbus-bin dbus-x11
  dunst
  espeak-ng
  desktop-file-utils appstream
  binutils
)

packages=("${APP[@]}")
[[ "${1:-}" == "--test" ]] && packages+=("${TEST[@]}")

SUDO=()
[[ $(id -u) -ne 0 ]] && SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${packages[@]}"
