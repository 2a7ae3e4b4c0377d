"""dictate: local-first dictation with Whisper. The headless core's public API."""

from dictate.batch import FileTranscript, transcribe_file
from dictate.engines import Engine, create_engine
from dictate.types import Segment, TranscribeOptions, Word

__version__ = "0.1.0"

__all__ = ["Engine", "FileTranscript", "Segment", "TranscribeOptions", "Word", "create_engine",
           "transcribe_file", "__version__"]
