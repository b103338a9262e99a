"""One name per model across every data source.

The sources spell the same model differently (AlpacaEval ``gpt4_1106_preview``,
RouterBench ``gpt-4-1106-preview``; RouterBench ``mistralai/mixtral-8x7b-chat``, ZeroEval
``Mixtral-8x7B-Instruct-v0.1``, the benchmarks ``mistralai/Mixtral-8x7B-Instruct-v0.1``).
If they kept their own spellings a Bradley-Terry fit or a matrix-factorisation router
would treat them as unrelated models, and the pool's GPT-4-vs-Mixtral labels would be
split across names. Every loader therefore passes names through
:func:`canonical_model_name`.

Rules, in order:

1. strip, lowercase, drop an organisation prefix (``org/name`` -> ``name``), turn ``_``
   and spaces into ``-``, and turn a Hugging Face style ``meta-llama-...`` into
   ``llama-...``;
2. look the result up in :data:`MODEL_ALIASES` (only names that are known to denote the
   same model, checked against the sources' own documentation);
3. otherwise keep the normalised name.

Deliberately *not* merged: provider-suffixed deployments (``...@hyperbolic``,
``...@sambanova``, ``...-fp8``), which ZeroEval scores side by side on the same prompts
(merging them would make a model battle itself); prompting variants
(``gpt-3.5-turbo-1106_concise``), which are different systems; and pairs whose version is
not documented (RouterBench ``claude-instant-v1`` vs AlpacaEval ``claude-instant-1.2``,
RouterBench ``mistral-7b-chat`` vs ``mistral-7b-instruct-v0.2``/``-v0.3``, AlpacaEval
``wizardlm-13b`` vs RouterBench ``WizardLM-13B-V1.2``).
"""

from __future__ import annotations

import re
from datetime import date

from ..errors import DataError

DEFAULT_STRONG_MODEL = "gpt-4-1106-preview"
DEFAULT_WEAK_MODEL = "mixtral-8x7b-instruct-v0.1"

#: normalised spelling (after rule 1) -> canonical name.
MODEL_ALIASES: dict[str, str] = {
    # GPT-4 family (AlpacaEval writes gpt4_<date>; its plain "gpt4" config is gpt-4-0613)
    "gpt4-1106-preview": "gpt-4-1106-preview",
    "gpt-4-turbo-1106": "gpt-4-1106-preview",
    "gpt4-0314": "gpt-4-0314",
    "gpt4-0613": "gpt-4-0613",
    "gpt4": "gpt-4-0613",
    "gpt4-0613-concise": "gpt-4-0613-concise",
    "gpt35-turbo-instruct": "gpt-3.5-turbo-instruct",
    "gpt-35-turbo-1106": "gpt-3.5-turbo-1106",
    # Mixtral: RouterBench calls the instruct model "mixtral-8x7b-chat"
    "mixtral-8x7b-chat": "mixtral-8x7b-instruct-v0.1",
    "mixtral-8x7b-instruct": "mixtral-8x7b-instruct-v0.1",
    "mixtral-8x7b": "mixtral-8x7b-instruct-v0.1",
    # Claude: RouterBench uses Bedrock ids, AlpacaEval's "claude" is claude-v1
    "claude": "claude-1",
    "claude-v1": "claude-1",
    "claude-v2": "claude-2",
    "claude-instant-v1": "claude-instant-1",
    "claude-3-opus": "claude-3-opus-20240229",
    "claude-3-sonnet": "claude-3-sonnet-20240229",
    "claude-3-haiku": "claude-3-haiku-20240307",
    "claude-3.5-sonnet": "claude-3-5-sonnet-20240620",
    # Llama: AlpacaEval keeps the HF "-hf" suffix, RouterBench the Replicate names
    "llama-2-70b-chat-hf": "llama-2-70b-chat",
    "llama-2-13b-chat-hf": "llama-2-13b-chat",
    "llama-2-7b-chat-hf": "llama-2-7b-chat",
    "code-llama-instruct-34b-chat": "codellama-34b-instruct",
    "llama-3.1-405b-inst-fp8": "llama-3.1-405b-instruct-fp8",
    "llama-3.1-405b-inst@sambanova": "llama-3.1-405b-instruct@sambanova",
}

_SEPARATORS = re.compile(r"[\s_]+")


def _normalise(name: str) -> str:
    n = name.strip().lower()
    if "/" in n:
        n = n.rsplit("/", 1)[1]
    n = _SEPARATORS.sub("-", n).strip("-")
    if n.startswith("meta-llama-"):
        n = n[len("meta-"):]
    return n


def canonical_model_name(name: str) -> str:
    """The one name this project uses for ``name`` (idempotent).

    Unknown names are normalised (lowercase, no org prefix, ``_`` -> ``-``) so that the
    same raw spelling always maps to the same name.
    """
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"model name must be a non-empty string, got {name!r}")
    n = _normalise(name)
    return MODEL_ALIASES.get(n, n)


# Families share strength across snapshots of one model line (gpt-4-1106-preview and
# gpt-4-turbo-2024-04-09 are both GPT-4 Turbo). Order matters: the first prefix that
# matches wins, so more specific lines come first.
_FAMILY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-4o-mini", "gpt-4o-mini"), ("gpt-4o", "gpt-4o"), ("chatgpt-4o", "gpt-4o"),
    ("gpt-4", "gpt-4"), ("gpt4", "gpt-4"), ("gpt-3.5", "gpt-3.5"), ("o1-", "o1"),
    ("claude-3-5", "claude-3.5"), ("claude-3", "claude-3"), ("claude-instant", "claude-instant"),
    ("claude", "claude"), ("mixtral", "mixtral"), ("mistral-large", "mistral-large"),
    ("mistral", "mistral"), ("openhermes-2.5-mistral", "mistral"), ("codellama", "llama-2"),
    ("llama-3.3-nemotron", "llama-3.1"), ("llama-3.1-nemotron", "llama-3.1"), ("llama-3.1", "llama-3.1"),
    ("fusechat-llama-3.1", "llama-3.1"), ("llama3-chatqa", "llama-3"), ("llama-3", "llama-3"),
    ("llama-2", "llama-2"), ("qwen2.5", "qwen2.5"), ("fusechat-qwen-2.5", "qwen2.5"), ("qwen2", "qwen2"),
    ("gemma-2", "gemma-2"), ("fusechat-gemma-2", "gemma-2"), ("codegemma", "gemma"), ("gemma", "gemma"),
    ("gemini-1.5-pro", "gemini-1.5-pro"), ("gemini-1.5-flash", "gemini-1.5-flash"),
    ("yi-1.5", "yi-1.5"), ("yi-large", "yi-large"), ("yi-", "yi"), ("deepseek-v2", "deepseek-v2"),
    ("vicuna", "vicuna"), ("phi-3", "phi-3"), ("phi-2", "phi-2"), ("text-davinci", "text-davinci"),
    ("reka", "reka"), ("wizardlm", "wizardlm"), ("openbuddy", "openbuddy"), ("alpaca", "alpaca"),
    ("oasst", "oasst"), ("falcon", "falcon"),
)


def model_family(name: str) -> str:
    """The model line a canonical name belongs to (itself when no family is known)."""
    canonical = canonical_model_name(name)
    for prefix, family in _FAMILY_PREFIXES:
        if canonical.startswith(prefix):
            return family
    return canonical


_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")


def _snapshot_date(suffix: str) -> "date | None":
    """The date of a ``-YYYY-MM-DD`` or ``-YYYYMMDD`` snapshot suffix (None otherwise)."""
    digits = suffix.lstrip("-").replace("-", "")
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def _nearest_snapshot(name: str, known: "list[str] | tuple[str, ...]") -> str | None:
    m = _SNAPSHOT.search(name)
    when = _snapshot_date(m.group(0)) if m else None
    if m is None or when is None:
        return None
    base = name[:m.start()]
    dated = [(k, _snapshot_date(k[len(base):])) for k in known
             if k.startswith(base + "-") and _SNAPSHOT.fullmatch(k[len(base):])]
    dated = [(k, d) for k, d in dated if d is not None]
    return min(dated, key=lambda kd: (abs((kd[1] - when).days), kd[0]))[0] if dated else None


def match_model(name: str, known: "list[str] | tuple[str, ...]", what: str = "model") -> str:
    """The name among ``known`` (a checkpoint's models) that ``name`` denotes, or an
    :class:`~routellm_integrations.errors.UnknownModelError` with a "did you mean".

    Accepted, in order: the name itself; its :func:`canonical_model_name`; a name
    without a snapshot date (``gpt-4o``) for the latest dated snapshot the checkpoint
    knows (``gpt-4o-2024-08-06``), as a provider resolves an undated alias; and a dated
    snapshot the checkpoint lacks (``gpt-4o-2024-11-20``) for the nearest dated one of
    the same model (a newer snapshot of a model line is closest to its neighbour)."""
    import difflib

    from ..errors import UnknownModelError

    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError(f"{what} must be a non-empty model name, got {name!r}")
    if name in known:
        return name
    canonical = canonical_model_name(name)
    if canonical in known:
        return canonical
    snapshots = [m for m in known if m.startswith(canonical + "-") and _SNAPSHOT.fullmatch(m[len(canonical):])]
    if snapshots:
        return max(snapshots, key=lambda m: m[len(canonical):])
    nearest = _nearest_snapshot(canonical, known)
    if nearest is not None:
        return nearest
    close = difflib.get_close_matches(canonical, list(known), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise UnknownModelError(f"{what} {name!r} is not one this checkpoint was trained on "
                            f"({len(known)} models, see .models).{hint}")
