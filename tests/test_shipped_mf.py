"""The shipped `mf` checkpoint with its real embedder, and the `routellm` command line."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from routellm_integrations import UnknownModelError, load_router
from routellm_integrations.cli import DEMO_PROMPTS, main
from routellm_integrations.routers.registry import CHECKPOINTS


@pytest.fixture(scope="module")
def mf():
    return load_router("mf")


def test_checkpoint_is_small_safetensors_with_a_card():
    folder = CHECKPOINTS / "mf"
    files = {p.name: p.stat().st_size for p in folder.iterdir()}
    assert set(files) == {"model.safetensors", "config.json", "README.md"}
    assert sum(files.values()) < 2_000_000
    card = (folder / "README.md").read_text()
    for needle in ("Decontamination", "routerbench", "zeroeval", "llmrouter", "Apache-2.0", "MIT",
                   "Reproduce: `routellm train mf"):
        assert needle in card
    config = json.loads((folder / "config.json").read_text())
    assert config["card"]["decontamination"]["prompts_dropped"] > 0


def test_scores_route_and_other_pairs(mf):
    prompts = ["Hi, how are you?", "Solve for x: 3x^2 - 12x + 9 = 0 and explain each step."]
    s = mf.score(prompts)
    assert s.shape == (2,) and ((s > 0) & (s < 1)).all()
    assert s[1] > s[0]  # maths needs GPT-4 more than small talk
    # batch padding moves int8 scores by ~1e-6, so compare with a margin
    d = mf.route(prompts[1], threshold=float(s[1]) - 1e-4)
    assert d.route == "strong" and d.router == "mf" and abs(d.score - s[1]) < 1e-4
    assert mf.route(prompts[1], threshold=float(s[1]) + 1e-4).route == "weak"
    other = load_router("mf", strong_model="gpt-4o-2024-05-13", weak_model="llama-3.1-8b-instruct")
    assert other.strong_model == "gpt-4o-2024-05-13"
    assert not np.allclose(other.score(prompts), s)
    with pytest.raises(UnknownModelError, match="gpt-7"):
        load_router("mf", strong_model="gpt-7")


def test_very_long_prompt_is_truncated_not_rejected(mf):
    s = mf.score(["word " * 20_000])
    assert s.shape == (1,) and np.isfinite(s).all()


def test_cli_route_and_errors(capsys):
    assert main(["route", "--router", "mf", "--threshold", "0.5", "What is 2+2?", "Write a sonnet."]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["router"] for x in lines] == ["mf", "mf"]
    assert all(x["model"] in ("gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1") for x in lines)
    assert main(["route", "--router", "nope", "hello"]) == 1
    assert "error: unknown router 'nope'" in capsys.readouterr().err


def test_cli_demo_prints_every_prompt(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("strong ", "weak "))]
    assert len(rows) == len(DEMO_PROMPTS)
    assert f"/{len(DEMO_PROMPTS)} prompts routed to gpt-4-1106-preview" in out


def test_cli_calibrate_hits_the_fraction(tmp_path, capsys):
    f = tmp_path / "prompts.txt"
    f.write_text("\n".join(DEMO_PROMPTS) + "\n")
    assert main(["calibrate", "--router", "mf", "--strong-fraction", "0.25", "--prompts", str(f)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["realised_strong_fraction"] == pytest.approx(0.25)
    assert 0 <= out["threshold"] <= 1
    assert main(["calibrate", "--router", "mf", "--strong-fraction", "0.25", "--prompts", str(tmp_path / "no")]) == 2


def test_cli_evaluate_mt_bench_table_and_plot(tmp_path, capsys):
    assert main(["evaluate", "--routers", "random", "length", "mf", "--benchmark", "mt-bench",
                 "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    png = tmp_path / "mt-bench.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    apgr = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("random", "length", "mf") and len(parts) >= 4:
            apgr[parts[0]] = float(parts[3])
    assert set(apgr) == {"random", "length", "mf"}
    assert apgr["length"] == pytest.approx(0.556, abs=0.002)
    # the shipped router must keep its category signal on MT-Bench (0.78 when trained)
    assert apgr["mf"] > 0.70 > apgr["length"]


def test_import_is_light():
    code = ("import sys, routellm_integrations, routellm_integrations.routers.mf; "
            "bad = [m for m in ('torch', 'transformers', 'onnxruntime', 'sentence_transformers') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_console_script_is_installed():
    exe = Path(sys.executable).with_name("routellm")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    for cmd in ("route", "demo", "train", "evaluate", "calibrate"):
        assert cmd in out
