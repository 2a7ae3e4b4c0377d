"""A loopback OpenAI-compatible `/v1/audio/transcriptions` server for tests.

It parses the multipart upload for real (the standard library's MIME parser), decodes the audio
with PyAV and runs faster-whisper on a random-weight test model, answering verbose_json with
segments and (when asked) words, like speaches / faster-whisper-server. Misbehaving modes answer
401, 429 a few times then 200, 500, slowly, or with garbage. Every request is recorded."""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16_000


@dataclass
class Upload:
    """What one request carried."""

    path: str
    headers: dict[str, str]
    fields: dict[str, list[str]]
    filename: str | None
    content_type: str | None
    file_bytes: bytes
    audio: np.ndarray | None = None  # decoded, 16 kHz mono float32


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, list[str]], tuple[str | None, str | None, bytes] | None]:
    """(form fields, (filename, content type, bytes) of the `file` part)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not msg.is_multipart():
        raise ValueError("not multipart")
    fields: dict[str, list[str]] = {}
    file_part = None
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            if name == "file":
                file_part = (part.get_filename(), part.get_content_type(), payload)
            continue
        fields.setdefault(str(name), []).append(payload.decode("utf-8"))
    return fields, file_part


def decode_upload(data: bytes) -> np.ndarray:
    import av

    with av.open(io.BytesIO(data)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks = []
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


@dataclass
class ServerConfig:
    mode: str = "ok"  # ok | 401 | 429 | 500 | slow | garbage | garbage-json | text-only
    api_key: str | None = None  # when set, requests must carry `Authorization: Bearer <key>`
    fail_times: int = 2  # mode 429 / 500-then-ok: this many failures before answering
    slow_s: float = 3.0
    max_upload_bytes: int | None = None  # answer 413 above this
    max_new_tokens: int = 6
    echo_key_in_errors: bool = True  # like real APIs that quote part of a rejected key


class _Handler(BaseHTTPRequestHandler):
    server: "TranscriptionServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json", extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, extra: dict | None = None) -> None:
        self._send(status, json.dumps({"error": {"message": message, "type": "test"}}).encode(), extra=extra)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        srv = self.server
        cfg = srv.config
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        upload = Upload(self.path, {k: v for k, v in self.headers.items()}, {}, None, None, b"")
        with srv.lock:
            srv.uploads.append(upload)
            n = len(srv.uploads)
        if not self.path.endswith(("/audio/transcriptions", "/audio/translations")):
            return self._error(404, "no such route")
        try:
            fields, file_part = parse_multipart(self.headers.get("Content-Type", ""), body)
        except Exception as exc:
            return self._error(400, f"bad multipart: {exc}")
        upload.fields = fields
        if file_part is None:
            return self._error(400, "no file part")
        upload.filename, upload.content_type, upload.file_bytes = file_part
        if cfg.api_key is not None:
            auth = self.headers.get("Authorization", "")
            if auth != f"Bearer {cfg.api_key}":
                given = auth.removeprefix("Bearer ")
                shown = given if cfg.echo_key_in_errors else "***"
                return self._error(401, f"Incorrect API key provided: {shown}.")
        mode = cfg.mode
        if mode == "401":
            return self._error(401, "Invalid authentication")
        if mode == "429":
            if n <= cfg.fail_times:
                return self._error(429, "Rate limit reached", extra={"Retry-After": "0"})
        if mode == "500":
            return self._error(500, "internal error: the model fell over")
        if mode == "500-then-ok" and n <= cfg.fail_times:
            return self._error(503, "loading model")
        if mode == "garbage":
            return self._send(200, b"<html><body>Welcome to the hotel wifi</body></html>", "text/html")
        if mode == "garbage-json":
            return self._send(200, json.dumps({"segments": [{"start": "soon", "text": 3}]}).encode())
        if mode == "slow":
            time.sleep(cfg.slow_s)
        if cfg.max_upload_bytes is not None and len(upload.file_bytes) > cfg.max_upload_bytes:
            return self._error(413, "file too large")
        try:
            upload.audio = decode_upload(upload.file_bytes)
        except Exception as exc:
            return self._error(400, f"cannot decode audio: {type(exc).__name__}")
        if mode == "text-only":
            return self._send(200, json.dumps({"text": " plain text"}).encode())
        try:
            result = srv.transcribe(upload.audio, fields)
        except Exception as exc:  # the test should see it as a 500, as from a real server
            return self._error(500, f"{type(exc).__name__}: {exc}")
        self._send(200, json.dumps(result).encode())


class TranscriptionServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, model_dir: Path | None, config: ServerConfig | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.config = config or ServerConfig()
        self.model_dir = model_dir
        self.uploads: list[Upload] = []
        self.lock = threading.Lock()
        self._model = None
        self._model_lock = threading.Lock()
        self._decode_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return  # the client gave up (a timeout test): nothing to report
        super().handle_error(request, client_address)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "TranscriptionServer":
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="test-transcription-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "TranscriptionServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def model(self):
        with self._model_lock:
            if self._model is None:
                from faster_whisper import WhisperModel

                self._model = WhisperModel(str(self.model_dir), device="cpu", compute_type="int8", cpu_threads=1,
                                           local_files_only=True)
            return self._model

    def transcribe(self, audio: np.ndarray, fields: dict[str, list[str]]) -> dict[str, Any]:
        """faster-whisper on the upload, answered the way speaches does (verbose_json)."""
        granularities = set(fields.get("timestamp_granularities[]", []))
        words = "word" in granularities
        language = (fields.get("language") or [None])[0]
        prompt = (fields.get("prompt") or [None])[0]
        model = self.model()
        with self._decode_lock:  # one decode at a time, as a single-worker server does
            segments, info = model.transcribe(audio, language=language, initial_prompt=prompt, temperature=0.0,
                                              beam_size=1, word_timestamps=words,
                                              max_new_tokens=self.config.max_new_tokens,
                                              condition_on_previous_text=False)
            segments = list(segments)  # a lazy generator: decoding happens here
        segs, all_words = [], []
        for i, s in enumerate(segments):
            segs.append({"id": i, "seek": s.seek, "start": s.start, "end": s.end, "text": s.text,
                         "tokens": list(s.tokens), "temperature": s.temperature, "avg_logprob": s.avg_logprob,
                         "compression_ratio": s.compression_ratio, "no_speech_prob": s.no_speech_prob})
            all_words.extend({"word": w.word.strip(), "start": w.start, "end": w.end} for w in (s.words or ()))
        out: dict[str, Any] = {"task": "transcribe", "language": info.language, "duration": info.duration,
                               "text": "".join(s["text"] for s in segs), "segments": segs}
        if words:
            out["words"] = all_words  # OpenAI puts words in a list of their own
        return out
