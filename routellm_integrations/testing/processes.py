"""Ending a child process the tests and benchmarks started (a proxy, a server, redis)."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, wait up to ``timeout`` seconds for a graceful exit, then SIGKILL: a child
    that hangs in its shutdown never outlives the test or benchmark that started it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
