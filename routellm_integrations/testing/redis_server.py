"""A real ``redis-server`` on 127.0.0.1 for tests and benchmarks (Debian's ``redis-server``
package). Missing, it raises: a test that needs Redis fails rather than skips."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .processes import stop_process


class RedisServerMissing(RuntimeError):
    """``redis-server`` is not installed (``apt-get install redis-server``; ``.ci/run`` does it)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``with RedisServer() as r: RedisStore(r.url)``; no persistence, its own temp dir."""

    def __init__(self, executable: str = "redis-server") -> None:
        path = shutil.which(executable)
        if path is None:
            raise RedisServerMissing(f"{executable!r} is not on PATH: install Debian's redis-server package")
        self.executable = path
        self.port = _free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="routellm-redis-")
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 30.0) -> "RedisServer":
        log = Path(self._dir.name) / "redis.log"
        self._proc = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self._dir.name, "--logfile", str(log)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._proc.returncode}: "
                                   f"{log.read_text() if log.exists() else ''}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout_s} s")

    def stop(self) -> None:
        if self._proc is not None:
            stop_process(self._proc, timeout=10)
        self._proc = None
        self._dir.cleanup()

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
