# `import webrtcvad` comes from the webrtcvad-wheels distribution: the stock hook looks for
# the metadata of a distribution named webrtcvad and fails.
from PyInstaller.utils.hooks import copy_metadata

datas = copy_metadata("webrtcvad-wheels")
