"""A real Hub-protocol server for the tests: olah (a Hugging Face mirror) serving local git repos, offline.

huggingface_hub reads ``HF_ENDPOINT`` when it is imported, so code under test runs in a subprocess
([`run_client`]) whose environment points at the server and at a temporary ``HF_HOME``. See
/work/shared/HUB_TESTING.md for the recipe and olah's quirks (401 instead of 404 at ``main``).

olah is looked up as ``$HF_SPIDER_OLAH`` (path to ``olah-cli``), then ``olah-cli`` next to this Python, on ``PATH``,
or in ``<repo>/.cache/olah-venv`` (a separate virtual environment, so the server's dependencies never mix with
the library's).
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTS_DIR = Path(__file__).resolve().parent
GIT_ID = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"]


def find_olah() -> str | None:
    """Path of the ``olah-cli`` executable, or ``None`` when olah is not installed."""
    candidates = [os.environ.get("HF_SPIDER_OLAH"), str(Path(sys.executable).parent / "olah-cli"),
                  shutil.which("olah-cli"), str(REPO_ROOT / ".cache" / "olah-venv" / "bin" / "olah-cli")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *GIT_ID, *args], cwd=repo, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    """``git add -A && git commit`` in ``repo`` (initialised on first use); returns the new commit sha."""
    if not (repo / ".git").exists():
        repo.mkdir(parents=True, exist_ok=True)
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OlahServer:
    """An olah process serving ``<mirrors>/models/<org>/<name>`` git repos on 127.0.0.1, offline.

    Args:
        mirrors: Folder holding ``models/<org>/<name>`` git repos.
        workdir: Scratch folder for olah's config, cache and logs.
    """

    def __init__(self, mirrors: Path, workdir: Path) -> None:
        self.mirrors, self.workdir = Path(mirrors), Path(workdir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, *, probe_repo: str, timeout: float = 30.0) -> OlahServer:
        olah = find_olah()
        if olah is None:
            raise RuntimeError("olah-cli not found")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "olah.toml"
        config.write_text(
            "[basic]\n"
            f'host = "127.0.0.1"\nport = {self.port}\n'
            f'repos-path = "{self.workdir / "cache"}"\n'
            'mirror-scheme = "http"\n'
            f'mirror-netloc = "127.0.0.1:{self.port}"\nmirror-lfs-netloc = "127.0.0.1:{self.port}"\n'
            f'mirrors-path = ["{self.mirrors}"]\n'
            "[accessibility]\noffline = true\n"
        )
        self.log = open(self.workdir / "olah.out", "wb")  # noqa: SIM115 (closed in stop())
        self.proc = subprocess.Popen([olah, "-c", str(config), "--log-path", str(self.workdir / "logs")],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=self.workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"olah exited with {self.proc.returncode}: {self.output()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/models/{probe_repo}/revision/main", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"olah did not answer within {timeout} s: {self.output()[-2000:]}")

    def output(self) -> str:
        path = self.workdir / "olah.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stop the server (by its PID) and wait until the port is closed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc is not None:
            self.log.close()
        self.proc = None


def client_env(endpoint: str, hf_home: Path, **extra: str) -> dict[str, str]:
    """Environment of a client process: the server as ``HF_ENDPOINT``, its own ``HF_HOME``, no telemetry."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update({"HF_ENDPOINT": endpoint, "HF_HOME": str(hf_home), "HF_HUB_DISABLE_TELEMETRY": "1",
                "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false",
                "HF_HUB_ETAG_TIMEOUT": "5", "HF_HUB_DOWNLOAD_TIMEOUT": "5"})
    env.update(extra)
    return env


CLIENT_PRELUDE = f"""
import json, logging, sys, time
_T0 = time.perf_counter()
sys.path.insert(0, {str(TESTS_DIR)!r})
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
# huggingface_hub retries a refused connection 5 times with back-off (~23 s per request against a stopped
# server). Keep the retries, skip the waiting: the tests check what happens after them, not how long it takes.
import huggingface_hub.utils._http as _hf_http
class _NoWaitTime:
    def __getattr__(self, name):
        return getattr(time, name)
    @staticmethod
    def sleep(seconds):
        pass
if getattr(_hf_http, "time", None) is time:
    _hf_http.time = _NoWaitTime()
RESULT = {{}}
def record(name, fn):
    start = time.perf_counter()
    try:
        RESULT[name] = {{"ok": fn()}}
    except Exception as err:
        RESULT[name] = {{"error": type(err).__name__, "message": str(err),
                        "mro": [c.__name__ for c in type(err).__mro__]}}
    RESULT[name]["seconds"] = round(time.perf_counter() - start, 2)
"""


def run_client(body: str, env: dict[str, str], *, timeout: float = 300) -> dict:
    """Run ``body`` (Python, after [`CLIENT_PRELUDE`]) in a fresh interpreter; returns its ``RESULT`` dict.

    ``record(name, fn)`` stores ``fn()``'s JSON-ready result or the error's type, message and class names.
    """
    script = (CLIENT_PRELUDE + "\nRESULT['_import_seconds'] = round(time.perf_counter() - _T0, 2)\n" + body
              + "\nprint('RESULT=' + json.dumps(RESULT))\n")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout,
                         cwd=TESTS_DIR)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT=")]
    if out.returncode != 0 or not lines:
        raise AssertionError(f"client failed (rc={out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}")
    result = json.loads(lines[-1][len("RESULT="):])
    result["_stderr"] = out.stderr
    timings = {k: v.get("seconds") for k, v in result.items() if isinstance(v, dict)}
    print(f"client timings (s): {timings}", file=sys.stderr)
    return result


def cache_problems(hf_home: Path) -> list[str]:
    """Half-written or dangling entries in an HF cache: ``*.incomplete`` blobs, broken snapshot links."""
    problems = []
    hub = Path(hf_home) / "hub"
    if not hub.exists():
        return problems
    for path in hub.rglob("*"):
        if path.name.endswith(".incomplete"):
            problems.append(f"incomplete download {path}")
        elif path.is_symlink() and not path.exists():
            problems.append(f"dangling link {path}")
    return problems


class RevisionGate:
    """The smallest stand-in for what olah cannot do: answer a revision that does not exist as the Hub does.

    For a commit sha that is not in a repo (deleted branch, rewritten history) olah answers ``500`` (and the client
    retries for ~20 s), where the Hub answers ``404`` with ``X-Error-Code: RevisionNotFound``. This reverse proxy sits
    in front of olah, answers requests for revisions missing from the mirrored git repo with the Hub's 404 and
    forwards everything else unchanged.
    """

    _PATTERNS = (re.compile(r"^/api/models/([^/]+/[^/]+)/(?:revision|tree)/([^/?]+)"),
                 re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/"))

    def __init__(self, upstream: str, mirrors: Path) -> None:
        self.upstream, self.mirrors = upstream, Path(mirrors)
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                gate._handle(self, body=False)

            def do_GET(self) -> None:
                gate._handle(self, body=True)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> RevisionGate:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _missing_revision(self, path: str) -> str | None:
        for pattern in self._PATTERNS:
            match = pattern.match(path)
            if match:
                repo, rev = match.group(1), urllib.parse.unquote(match.group(2))
                folder = self.mirrors / "models" / repo
                ok = subprocess.run(["git", "rev-parse", "--verify", "-q", f"{rev}^{{commit}}"], cwd=folder,
                                    capture_output=True).returncode == 0 if folder.is_dir() else True
                return None if ok else rev
        return None

    def _handle(self, handler: http.server.BaseHTTPRequestHandler, *, body: bool) -> None:
        rev = self._missing_revision(handler.path)
        if rev is not None:
            payload = json.dumps({"error": f"Invalid rev id: {rev}"}).encode()
            handler.send_response(404)
            handler.send_header("X-Error-Code", "RevisionNotFound")
            handler.send_header("X-Error-Message", f"Invalid rev id: {rev}")
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            if body:
                handler.wfile.write(payload)
            return
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "connection")}
        request = urllib.request.Request(self.upstream + handler.path, method=handler.command, headers=headers)
        try:
            response = _NO_REDIRECTS.open(request, timeout=30)
        except urllib.error.HTTPError as err:  # 3xx (not followed) and 4xx/5xx pass through unchanged
            response = err
        data = response.read()
        handler.send_response(response.status if hasattr(response, "status") else response.code)
        for key, value in response.headers.items():
            if key.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                handler.send_header(key, value)
        handler.send_header("Content-Length", response.headers.get("Content-Length", str(len(data))))
        handler.end_headers()
        if body:
            handler.wfile.write(data)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_NO_REDIRECTS = urllib.request.build_opener(_NoRedirect)
