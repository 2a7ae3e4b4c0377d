"""Audio in: capture, files, VAD. Knows nothing of engines or Qt."""
