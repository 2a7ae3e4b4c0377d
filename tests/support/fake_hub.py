"""A model hub on loopback that speaks enough of the Hugging Face HTTP API for huggingface_hub's
real download code (`hf_hub_download`, `snapshot_download`) to fetch models from it."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    """Serves {repo_id: {filename: bytes}}; `requests` records every path asked for."""

    def __init__(self, repos: dict[str, dict[str, bytes]]) -> None:
        self.repos = repos
        self.requests: list[str] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _reply(self, body: bytes, content_type: str, etag: str | None = None) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("X-Repo-Commit", COMMIT)
                if etag:
                    self.send_header("ETag", f'"{etag}"')
                self.end_headers()
                if self.command == "GET":
                    self.wfile.write(body)

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
