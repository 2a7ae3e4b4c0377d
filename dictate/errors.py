"""One error hierarchy. Every expected failure is a DictateError whose str() is a one-line message
telling the user what went wrong and how to fix it; the CLI prints it without a traceback."""


class DictateError(Exception):
    """Base of every user-facing failure."""


class ConfigError(DictateError):
    """The config file or an option is invalid."""


class AudioDeviceError(DictateError):
    """No PortAudio, no input device, device unplugged, stream failed."""


class AudioDecodeError(DictateError):
    """A file could not be decoded to audio (corrupt, empty, not audio, no audio track)."""


class EngineError(DictateError):
    """An engine could not be created or failed while transcribing."""


class ModelError(DictateError):
    """A model is missing, cannot be downloaded, or cannot be loaded."""


class OutputError(DictateError):
    """Text could not be written: typing backend missing, output file not writable, disk full."""


class SecretsError(DictateError):
    """No usable keyring backend, or the keyring refused."""
