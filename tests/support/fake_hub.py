"""A model hub on loopback that speaks enough of the Hugging Face HTTP API for huggingface_hub's
real download code (`hf_hub_download`, `snapshot_download`) to fetch models from it. Byte ranges
are served (206) so that interrupted downloads resume; `rate_bytes_s` makes it a slow network."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
import time
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Serves {repo_id: {filename: bytes}}; `requests` records every path asked for."""

    def __init__(self, repos: dict[str, dict[str, bytes]], rate_bytes_s: float | None = None) -> None:
        self.repos = repos
        self.requests: list[str] = []
        self.ranges: list[str] = []  # Range headers received
        self.rate_bytes_s = rate_bytes_s
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _reply(self, body: bytes, content_type: str, etag: str | None = None) -> None:
                size = len(body)
                start = 0
                wanted = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if wanted and etag and self.command == "GET":
                    hub.ranges.append(self.headers["Range"])
                    start = min(int(wanted.group(1)), size)
                self.send_response(206 if start else 200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(size - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                self.send_header("X-Repo-Commit", COMMIT)
                if etag:
                    self.send_header("ETag", f'"{etag}"')
                self.end_headers()
                if self.command != "GET":
                    return
                if hub.rate_bytes_s is None or not etag:
                    self.wfile.write(body[start:])
                    return
                piece = 64 * 1024
                try:
                    for i in range(start, size, piece):
                        self.wfile.write(body[i:i + piece])
                        time.sleep(piece / hub.rate_bytes_s)
                except (BrokenPipeError, ConnectionResetError):  # the client went away (cancelled)
                    pass

            def _route(self) -> None:
                hub.requests.append(self.path)
                path = self.path.split("?")[0]
                if path.startswith("/api/models/") and "/tree/" in path:  # a folder listing
                    repo = path[len("/api/models/"):].split("/tree/")[0]
                    if repo in hub.repos:
                        tree = [{"type": "file", "path": f, "size": len(d), "oid": hashlib.sha1(d).hexdigest()}
                                for f, d in hub.repos[repo].items()]
                        return self._reply(json.dumps(tree).encode(), "application/json")
                elif path.startswith("/api/models/"):  # repo info with its file list
                    repo = path[len("/api/models/"):].split("/revision/")[0]
                    if repo in hub.repos:
                        info = {"id": repo, "sha": COMMIT,
                                "siblings": [{"rfilename": f} for f in hub.repos[repo]]}
                        return self._reply(json.dumps(info).encode(), "application/json")
                elif "/resolve/" in path:
                    repo, _, rest = path.lstrip("/").partition("/resolve/")
                    filename = rest.partition("/")[2]
                    data = hub.repos.get(repo, {}).get(filename)
                    if data is not None:
                        return self._reply(data, "application/octet-stream", hashlib.sha256(data).hexdigest())
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_HEAD = _route

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-hub", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> "FakeHub":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def repo_from_dir(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}
