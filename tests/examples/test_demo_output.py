"""``make demo`` with the local default models: third-party progress bars (transformers'
"Loading weights") never land in the table. The demo runs in a subprocess, unbuffered,
with stderr merged into stdout as a terminal shows them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from routellm_integrations.cli import DEMO_PROMPTS

ROOT = Path(__file__).resolve().parents[2]
PROGRESS_MARKS = ("it/s", "s/it", "█", "%|", "Loading weights")


def test_demo_table_is_free_of_progress_bars():
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "HF_HUB_DISABLE_PROGRESS_BARS")}
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run([sys.executable, "-u", "-m", "langchain_routellm.demo", "--max-tokens", "1",
                           "--strong-max-tokens", "1"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:]
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("route "))
    table = lines[header + 1: header + 1 + len(DEMO_PROMPTS)]
    assert all(line.startswith(("strong ", "weak ")) for line in table), "\n".join(table)
    assert lines[header + 1 + len(DEMO_PROMPTS)] == ""  # the summary follows the last row
    assert not [mark for mark in PROGRESS_MARKS if mark in out], out[:3000]  # silenced, not just moved
    assert "local models" in out and "strong-call share" in out
