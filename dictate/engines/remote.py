"""OpenAI-compatible HTTP backend: POST /v1/audio/transcriptions (OpenAI, speaches /
faster-whisper-server, whisper.cpp's server, vLLM...). The API key comes from the OS keyring.

Nothing is sent until transcribe() is called: building the engine opens no connection."""

from __future__ import annotations

import http.client
import io
import json
import logging
import random
import socket
import ssl
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator
from urllib.parse import urlsplit

import numpy as np
from numpy.typing import NDArray

from dictate.engines import check_audio
from dictate.engines.fallback import EngineUnavailableError
from dictate.engines.pauses import split
from dictate.errors import ConfigError, SecretsError
from dictate.types import SAMPLE_RATE_HZ, Segment, TranscribeOptions, Word

if TYPE_CHECKING:
    from dictate.config import Config

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 30.0
MAX_ERROR_CHARS = 160

# name -> (container, codec, sample format, file name, MIME type)
UPLOAD_FORMATS: dict[str, tuple[str, str, str, str, str]] = {
    "flac": ("flac", "flac", "s16", "audio.flac", "audio/flac"),  # lossless, about half of WAV
    "wav": ("wav", "pcm_s16le", "s16", "audio.wav", "audio/wav"),  # for servers that read only WAV
}


class RemoteError(EngineUnavailableError):
    """Any failure to get a transcript from the server; a fallback engine may take over."""


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    base_path: str  # e.g. /v1

    @classmethod
    def parse(cls, base_url: str) -> "Endpoint":
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"remote: base URL {base_url!r} should look like http://host:port/v1")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ConfigError(f"remote: base URL {base_url!r} has a bad port") from None
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    def __str__(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.base_path}"


def encode_audio(audio: NDArray[np.float32], fmt: str = "flac") -> bytes:
    """Mono 16 kHz float32 -> a small file in memory (16-bit is all Whisper's front end uses)."""
    import av

    container_fmt, codec, sample_fmt, _name, _mime = UPLOAD_FORMATS[fmt]
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16).reshape(1, -1)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container_fmt) as out:
        stream = out.add_stream(codec, rate=SAMPLE_RATE_HZ)
        stream.layout = "mono"
        stream.format = sample_fmt
        frame = av.AudioFrame.from_ndarray(pcm, format=sample_fmt, layout="mono")
        frame.sample_rate = SAMPLE_RATE_HZ
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def multipart(fields: list[tuple[str, str]], file_field: str, filename: str, mime: str,
              data: bytes) -> tuple[bytes, str]:
    """(body, content type) of a multipart/form-data request."""
    boundary = f"dictate-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
                     .encode("utf-8"))
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
                 f"Content-Type: {mime}\r\n\r\n".encode("utf-8"))
    parts.append(data)
    parts.append(f"\r\n--{boundary}--\r\n".encode("utf-8"))
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class RemoteEngine:
    name = "remote"

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None,
                 connect_timeout_s: float = 5.0, read_timeout_s: float = 120.0, max_retries: int = 3,
                 max_upload_bytes: int = 24_000_000, upload_format: str = "flac",
                 backoff_s: float = 0.5, key_problem: str | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if upload_format not in UPLOAD_FORMATS:
            raise ConfigError(f"remote: upload format {upload_format!r}: choose from {', '.join(UPLOAD_FORMATS)}")
        self.endpoint = Endpoint.parse(base_url)
        self.model = model
        self.model_path = f"{self.endpoint} {model}"  # what `transcribe` reports as the model
        self._api_key = api_key or None
        self._key_problem = key_problem  # why there is no key, for a 401
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.max_retries = max(0, max_retries)
        self.max_upload_bytes = int(max_upload_bytes)
        self.upload_format = upload_format
        self.backoff_s = backoff_s
        self._sleep = sleep
        self.requests_sent = 0  # for tests and stats

    def __repr__(self) -> str:  # never the key
        return f"RemoteEngine({str(self.endpoint)!r}, model={self.model!r}, key={'set' if self._api_key else 'none'})"

    @classmethod
    def from_config(cls, config: "Config", model: str | None = None) -> "RemoteEngine":
        from dictate import secrets

        r = config.remote
        key, problem = None, None
        try:
            key = secrets.get(secrets.SecretKey.REMOTE)
            if not key:
                problem = "no key is stored; add one with `dictate secrets set remote`"
        except SecretsError as exc:
            problem = str(exc)
            log.info("remote: sending requests without an API key: %s", problem)
        return cls(r.base_url, model or r.model, api_key=key, connect_timeout_s=r.connect_timeout_s,
                   read_timeout_s=r.read_timeout_s, max_retries=r.max_retries,
                   max_upload_bytes=int(r.max_upload_mb * 1_000_000),
                   upload_format=r.upload_format, key_problem=problem)

    # -- the Engine protocol -------------------------------------------------------------------

    def transcribe(self, audio: NDArray[np.float32], options: TranscribeOptions) -> list[Segment]:
        return list(self.transcribe_iter(audio, options))

    def transcribe_iter(self, audio: NDArray[np.float32], options: TranscribeOptions) -> Iterator[Segment]:
        """One request per piece; long audio is cut at pauses so every upload fits the server's limit."""
        audio = check_audio(audio)
        if audio.size == 0:
            return
        for offset, data in self._uploads(audio):
            duration_s = data[1]
            for seg in self._request(data[0], duration_s, options):
                yield seg.shifted(offset / SAMPLE_RATE_HZ) if offset else seg

    # -- splitting -----------------------------------------------------------------------------

    def _uploads(self, audio: NDArray[np.float32]) -> Iterator[tuple[int, tuple[bytes, float]]]:
        """(offset in samples, (encoded bytes, seconds)) per piece, encoded lazily."""
        whole = encode_audio(audio, self.upload_format)
        if len(whole) <= self.max_upload_bytes:
            yield 0, (whole, audio.size / SAMPLE_RATE_HZ)
            return
        yield from self._split(audio, 0, len(whole))

    def _split(self, audio: NDArray[np.float32], base: int, encoded: int) -> Iterator[tuple[int, tuple[bytes, float]]]:
        bytes_per_sample = encoded / audio.size
        # 10% headroom: compression varies along the recording.
        max_samples = max(SAMPLE_RATE_HZ, int(self.max_upload_bytes / bytes_per_sample * 0.9))
        pieces = split(audio, max_samples)
        log.info("remote: %.0f s of audio in %d uploads (limit %.1f MB)", audio.size / SAMPLE_RATE_HZ,
                 len(pieces), self.max_upload_bytes / 1e6)
        for offset, piece in pieces:
            data = encode_audio(piece, self.upload_format)
            if len(data) > self.max_upload_bytes:
                if piece.size <= SAMPLE_RATE_HZ:
                    raise RemoteError(f"remote: upload limit of {self.max_upload_bytes} bytes is below one "
                                      "second of audio; raise [remote] max_upload_mb")
                yield from self._split(piece, base + offset, len(data))
                continue
            yield base + offset, (data, piece.size / SAMPLE_RATE_HZ)

    # -- one request ---------------------------------------------------------------------------

    def _fields(self, options: TranscribeOptions) -> list[tuple[str, str]]:
        fields = [("model", self.model), ("response_format", "verbose_json")]
        if options.task != "translate":
            if options.language:
                fields.append(("language", options.language))
            fields.append(("timestamp_granularities[]", "segment"))
            if options.word_timestamps:
                fields.append(("timestamp_granularities[]", "word"))
        prompt = " ".join(p for p in (" ".join(options.hotwords), options.initial_prompt or "") if p).strip()
        if prompt:
            fields.append(("prompt", prompt))
        temperature = options.temperature
        if isinstance(temperature, tuple):
            temperature = temperature[0] if len(temperature) == 1 else None
        if temperature is not None:
            fields.append(("temperature", repr(float(temperature))))
        return fields

    def _request(self, data: bytes, duration_s: float, options: TranscribeOptions) -> list[Segment]:
        _c, _codec, _fmt, filename, mime = UPLOAD_FORMATS[self.upload_format]
        body, content_type = multipart(self._fields(options), "file", filename, mime, data)
        route = "translations" if options.task == "translate" else "transcriptions"
        path = f"{self.endpoint.base_path}/audio/{route}"
        headers = {"Content-Type": content_type, "Accept": "application/json", "User-Agent": "dictate"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        status, reply, retry_after = self._post_with_retries(path, body, headers)
        return parse_response(reply, duration_s, self._scrub)

    def _post_with_retries(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, float | None]:
        attempt = 0
        while True:
            status, reply, retry_after = self._post(path, body, headers)
            if status < 300:
                return status, reply, retry_after
            if status in RETRY_STATUSES and attempt < self.max_retries:
                delay = retry_after if retry_after is not None else self.backoff_s * (2 ** attempt) * random.uniform(0.75, 1.25)
                log.info("remote: HTTP %d, retry %d of %d in %.1f s", status, attempt + 1, self.max_retries, delay)
                self._sleep(delay)
                attempt += 1
                continue
            raise self._http_error(status, reply, attempt)

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, float | None]:
        ep = self.endpoint
        conn: http.client.HTTPConnection
        if ep.scheme == "https":
            conn = http.client.HTTPSConnection(ep.host, ep.port, timeout=self.connect_timeout_s,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(ep.host, ep.port, timeout=self.connect_timeout_s)
        try:
            try:
                conn.connect()
            except socket.timeout:
                raise RemoteError(f"remote server {ep} unreachable: no answer within {self.connect_timeout_s:g} s") from None
            except ssl.SSLError as exc:
                raise RemoteError(f"remote server {ep}: TLS failed ({exc.reason or type(exc).__name__})") from None
            except OSError as exc:
                raise RemoteError(f"remote server {ep} unreachable ({exc.strerror or type(exc).__name__})") from None
            assert conn.sock is not None
            conn.sock.settimeout(self.read_timeout_s)  # from here on the read timeout applies
            self.requests_sent += 1
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                reply = resp.read()
            except socket.timeout:
                raise RemoteError(f"remote server {ep} did not answer within {self.read_timeout_s:g} s") from None
            except (http.client.HTTPException, OSError) as exc:
                # The connection broke mid-request: treat as a server error, which is retried.
                log.info("remote: connection broke: %s", type(exc).__name__)
                return 503, b"", None
            return resp.status, reply, _retry_after(resp.getheader("Retry-After"))
        finally:
            conn.close()

    # -- errors --------------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        """One line, short, and never the key, even when the server echoes it back."""
        text = " ".join(text.split())
        if self._api_key:
            text = text.replace(self._api_key, "***")
            # Servers often echo part of a key: hide any long run that is a piece of it.
            for n in range(len(self._api_key) - 1, 7, -1):
                for i in range(0, len(self._api_key) - n + 1):
                    piece = self._api_key[i:i + n]
                    if piece in text:
                        text = text.replace(piece, "***")
        return text[:MAX_ERROR_CHARS] + ("…" if len(text) > MAX_ERROR_CHARS else "")

    def _http_error(self, status: int, reply: bytes, retries: int) -> RemoteError:
        detail = self._scrub(_server_message(reply))
        suffix = f": {detail}" if detail else ""
        after = f" after {retries} retries" if retries else ""
        if status in (401, 403):
            if not self._api_key:
                hint = self._key_problem or "add one with `dictate secrets set remote`"
                return RemoteError(f"the remote server wants an API key (HTTP {status}); {hint}")
            return RemoteError(f"the remote server rejected the API key (HTTP {status}){suffix}; "
                               "store the right one with `dictate secrets set remote`")
        if status == 429:
            return RemoteError(f"rate-limited by the remote server (HTTP 429){after}; try again later{suffix}")
        if status == 413:
            return RemoteError("the remote server refused the upload as too large (HTTP 413); "
                               "lower [remote] max_upload_mb")
        if status == 404:
            return RemoteError(f"the remote server has no {self.endpoint.base_path}/audio/transcriptions (HTTP 404); "
                               "check [remote] base_url (it should end in /v1)")
        if status >= 500:
            return RemoteError(f"remote server error (HTTP {status}){after}{suffix}")
        return RemoteError(f"the remote server refused the request (HTTP {status}){suffix}")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return None  # an HTTP date: use our own backoff


def _server_message(reply: bytes) -> str:
    """OpenAI-style {"error": {"message": ...}} or {"detail": ...}, else the start of the text."""
    text = reply.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text if text and "<" not in text[:1] else ""
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"]
        for key in ("error", "detail", "message"):
            if isinstance(data.get(key), str):
                return data[key]
    return ""


def _bad(why: str) -> RemoteError:
    return RemoteError(f"bad response from the remote server: {why}")


def _num(obj: dict, key: str, default: float | None = None) -> float | None:
    value = obj.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"{key} is not a number")
    return float(value)


def _word(obj: Any) -> Word:
    if not isinstance(obj, dict) or not isinstance(obj.get("word"), str):
        raise _bad("a word without text")
    text = obj["word"]
    if text and not text[0].isspace():
        text = " " + text  # OpenAI sends bare words; our Words carry their leading space
    start, end = _num(obj, "start"), _num(obj, "end")
    if start is None or end is None:
        raise _bad("a word without times")
    prob = _num(obj, "probability", 1.0)
    return Word(start, max(start, end), text, 1.0 if prob is None else prob)


def parse_response(reply: bytes, duration_s: float, scrub: Callable[[str], str] = str) -> list[Segment]:
    """verbose_json -> Segments with Words; plain {"text": ...} becomes one segment over the audio."""
    try:
        data = json.loads(reply.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        start = scrub(reply[:40].decode("utf-8", "replace"))
        raise _bad(f"not JSON ({start!r}…)" if start else "empty body") from None
    if not isinstance(data, dict) or not ("segments" in data or isinstance(data.get("text"), str)):
        raise _bad("no text or segments in it")
    raw_segments = data.get("segments") or []
    if not isinstance(raw_segments, list):
        raise _bad("segments is not a list")
    loose_words = [_word(w) for w in data.get("words") or []]
    segments: list[Segment] = []
    for raw in raw_segments:
        if not isinstance(raw, dict) or not isinstance(raw.get("text"), str):
            raise _bad("a segment without text")
        start, end = _num(raw, "start"), _num(raw, "end")
        if start is None or end is None:
            raise _bad("a segment without times")
        words = tuple(_word(w) for w in raw.get("words") or ())
        segments.append(Segment(start, max(start, end), raw["text"], words,
                                no_speech_prob=_num(raw, "no_speech_prob"), avg_logprob=_num(raw, "avg_logprob"),
                                compression_ratio=_num(raw, "compression_ratio")))
    if not segments:
        text = data.get("text", "")
        if isinstance(text, str) and text.strip():
            segments = [Segment(0.0, duration_s, text if text[:1].isspace() else " " + text)]
    if loose_words:
        segments = _attach_words(segments, loose_words)
    return [s.clamped(duration_s) for s in segments]


def _attach_words(segments: list[Segment], words: list[Word]) -> list[Segment]:
    """OpenAI returns words in a list of their own: give each to the segment holding its midpoint."""
    if not segments:
        return segments
    buckets: list[list[Word]] = [list(s.words) for s in segments]
    for w in words:
        mid = (w.start_s + w.end_s) / 2
        best = min(range(len(segments)), key=lambda i: 0.0 if segments[i].start_s <= mid <= segments[i].end_s
                   else min(abs(mid - segments[i].start_s), abs(mid - segments[i].end_s)))
        buckets[best].append(w)
    return [Segment(s.start_s, s.end_s, s.text, tuple(sorted(b, key=lambda w: w.start_s)), s.no_speech_prob,
                    s.avg_logprob, s.compression_ratio) for s, b in zip(segments, buckets)]
