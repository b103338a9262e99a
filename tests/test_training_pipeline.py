"""`routellm train mf` end to end on a slice of the real training pool.

A hashing embedder stands in for MiniLM (the real embedders have their own tests), so
this checks the data flow: loading, decontamination, training, validation, the model
card and the checkpoint a user then loads with ``load_router(folder)``.
"""

import json

import numpy as np
import pytest
from fakes import HashingEmbedder

from routellm_integrations import DataError, load_router
from routellm_integrations.data.user_files import load_battles_file
from routellm_integrations.training.pipeline import train_mf_command


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ROUTELLM_CACHE_DIR", str(tmp_path / "cache"))


def test_train_small_slice_save_reload_route(tmp_path, isolated_cache):
    emb = HashingEmbedder(dim=64)
    out = train_mf_command(out=tmp_path / "mf", embedder=emb, reference_embedder=emb, max_prompts_per_source=8,
                           epochs=1, evaluate=False, progress=False)
    files = {p.name for p in out.iterdir()}
    assert files == {"model.safetensors", "config.json", "README.md"}
    config = json.loads((out / "config.json").read_text())
    assert config["embedder"] == "test-hashing"
    assert config["default_strong_model"] == "gpt-4-1106-preview"
    card = (out / "README.md").read_text()
    assert "Decontamination" in card and "routerbench/arc_challenge" in card and "MIT" in card
    assert "CC BY-NC" not in card  # AlpacaEval is not a default source
    decon = config["card"]["decontamination"]
    assert decon["prompts_seen"] > 0 and decon["threshold"] == 0.95

    router = load_router(out, embedder=HashingEmbedder(dim=64))
    prompts = ["What is 2 + 2?", "Write a proof that the square root of 2 is irrational."]
    scores = router.score(prompts)
    assert scores.shape == (2,) and ((scores > 0) & (scores < 1)).all()
    # reproducible: the same seed gives the same weights
    out2 = train_mf_command(out=tmp_path / "mf2", embedder=emb, reference_embedder=emb, max_prompts_per_source=8,
                            epochs=1, evaluate=False, progress=False)
    again = load_router(out2, embedder=HashingEmbedder(dim=64))
    assert np.allclose(again.score(prompts), scores, atol=1e-6)
    # the everyday prior is fitted by default and said so; --no-everyday-prior leaves it out
    assert router.weights.has_everyday_prior and config["everyday_beta"] == 0.5
    assert "## Everyday prior" in card and "everyday_prompts.jsonl" in card
    assert config["card"]["everyday_prompts"]["kept"] > 200
    plain = train("mf", out=tmp_path / "plain", embedder=emb, reference_embedder=emb, max_prompts_per_source=8,
                  epochs=1, evaluate=False, progress=False, everyday_prior=False)
    bare = load_router(plain, embedder=HashingEmbedder(dim=64))
    assert not bare.weights.has_everyday_prior and "everyday_beta" not in bare.config_data
    assert "Everyday prior" not in (plain / "README.md").read_text()
    # the same MF; the prior only multiplies its score by P(task) ** beta <= 1
    assert (scores <= bare.score(prompts) + 1e-6).all()


def test_user_battles_file_trains_and_bad_rows_are_named(tmp_path, isolated_cache):
    good = tmp_path / "mine.csv"
    rows = ["prompt,model_a,model_b,winner"]
    for i in range(30):
        rows.append(f"\"prove lemma {i} about primes\",gpt-4-1106-preview,mistralai/Mixtral-8x7B-Instruct-v0.1,a")
        rows.append(f"\"say hi to friend {i}\",gpt-4-1106-preview,mistralai/Mixtral-8x7B-Instruct-v0.1,tie")
    good.write_text("\n".join(rows) + "\n")
    table = load_battles_file(good)
    assert len(table) == 60 and "mixtral-8x7b-instruct-v0.1" in table.models
    emb = HashingEmbedder(dim=32)
    out = train_mf_command(out=tmp_path / "own", sources=(), battles_files=[good], embedder=emb,
                           reference_embedder=emb, epochs=200, evaluate=False, progress=False)
    router = load_router(out, embedder=HashingEmbedder(dim=32))
    s = router.score(["prove lemma 99 about primes", "say hi to friend 99"])
    assert s[0] > s[1]

    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,model_a,model_b,winner\nhello,gpt-4,mixtral,maybe\n")
    with pytest.raises(DataError, match=r"bad.csv:2: winner must be a, b or tie"):
        load_battles_file(bad)
    bad.write_text("prompt,model_a,winner\nhello,gpt-4,a\n")
    with pytest.raises(DataError, match="missing column"):
        load_battles_file(bad)
    jl = tmp_path / "b.jsonl"
    jl.write_text('{"prompt": "x", "model_a": "m1", "model_b": "m1", "winner": "a"}\n')
    with pytest.raises(DataError, match="same model"):
        load_battles_file(jl)
    with pytest.raises(DataError, match="nothing to train on"):
        train_mf_command(out=tmp_path / "none", sources=(), embedder=emb, reference_embedder=emb, progress=False)


# ----------------------------------------------------------------------------- one pipeline, any trainer

import math  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from pydantic import BaseModel, Field  # noqa: E402

from routellm_integrations.data.models import DEFAULT_STRONG_MODEL, DEFAULT_WEAK_MODEL  # noqa: E402
from routellm_integrations.errors import TrainingOptionError, UnknownModelError, UnknownSourceError  # noqa: E402
from routellm_integrations.training.card import render_model_card  # noqa: E402
from routellm_integrations.training.pipeline import train  # noqa: E402
from routellm_integrations.training.registry import TRAINERS, TrainerSpec  # noqa: E402
from toy.trainer import length_threshold  # noqa: E402


class ToyConfig(BaseModel):
    scale: float = Field(1.0, gt=0, description="log-length units per unit of logit")
    seed: int = Field(0, ge=0, description="unused; set from train(seed=)")


class LengthThresholdRouter:
    """P(strong wins) = sigmoid((log length - threshold) / scale): the smallest router a
    trainer can fit, with what the pipeline needs (embedder, config_data, save_pretrained)
    and what cross-validation needs (with_pair, scores_from_embeddings)."""

    def __init__(self, threshold: float, config_data: dict, embedder) -> None:
        self.threshold, self.config_data, self.embedder = threshold, config_data, embedder

    def with_pair(self, strong: str, weak: str) -> "LengthThresholdRouter":
        if {strong, weak} - set(self.config_data["models"]):
            raise UnknownModelError(f"{strong!r} / {weak!r}")
        return self

    def scores_from_embeddings(self, prompts, features) -> np.ndarray:
        x = np.log([len(p) for p in prompts])
        return 1.0 / (1.0 + np.exp(-(x - self.threshold) / self.config_data["training"]["scale"]))

    def save_pretrained(self, out, model_card=None):
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(self.config_data, indent=2, sort_keys=True))
        (out / "README.md").write_text(model_card or "")
        return out


def fit_length_threshold(table, embeddings, config, *, embedder, strong_model, weak_model, progress=False):
    threshold = length_threshold(table, strong_model, weak_model)
    config_data = {"router": "length_threshold", "models": list(table.models), "features": [],
                   "embedder": embedder.name, "embedding_dim": int(embeddings.shape[1]),
                   "default_strong_model": strong_model, "default_weak_model": weak_model,
                   "threshold": threshold, "training": config.model_dump()}
    return LengthThresholdRouter(threshold, config_data, embedder), {"threshold": threshold,
                                                                     "n_prompts": len(table.prompts)}


TOY = TrainerSpec(name="length_threshold", config=ToyConfig, fit=fit_length_threshold,
                  describe=lambda cfg: f"Toy router: strong above log length {cfg['threshold']:.2f}.",
                  default_embedder=lambda cfg, buckets=64: HashingEmbedder(dim=buckets),
                  embedder_options={"buckets": 64})


def _toy_battles(path):
    rows = ["prompt,model_a,model_b,winner"]
    filler = " and then show every step of the argument in full detail" * 3
    for i in range(100):
        rows.append(f"\"prove theorem {i} about primes{filler}\",{DEFAULT_STRONG_MODEL},{DEFAULT_WEAK_MODEL},a")
        rows.append(f"\"hi friend {i}\",{DEFAULT_WEAK_MODEL},{DEFAULT_STRONG_MODEL},tie")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_new_trainer_runs_through_the_pipeline(tmp_path, isolated_cache):
    battles = _toy_battles(tmp_path / "toy.csv")
    out = train(TOY, out=tmp_path / "toy", sources=(), battles_files=[battles], reference_embedder=HashingEmbedder(64),
                evaluate=False, progress=False, scale=0.5, buckets=48)
    assert {p.name for p in out.iterdir()} == {"config.json", "README.md"}
    config = json.loads((out / "config.json").read_text())
    assert config["embedding_dim"] == 48  # the embedder option reached the default embedder
    assert config["training"] == {"scale": 0.5, "seed": 0}
    assert math.log(len("hi friend 10")) < config["threshold"] < math.log(200)  # long prompts: 200+ chars
    card = config["card"]
    assert card["training_report"]["n_prompts"] == 200
    assert card["battles_by_source"] == {"user/toy": 200}
    sets = {(r["set"], r["router"]) for r in card["validation"]}  # the default: refit on 4 prompt folds
    assert ("val:user/toy", "length_threshold") in sets and ("val:default-pair", "length") in sets
    assert all(r["folds"] == 4 for r in card["validation"])
    readme = (out / "README.md").read_text()
    assert readme.startswith("# `length_threshold` router checkpoint")
    assert "Toy router: strong above log length" in readme
    for section in ("## Training data", "| user/toy | 200 |", "## Decontamination", "## Training",
                    "## Validation", "val:user/toy"):
        assert section in readme, section


@pytest.fixture
def nowhere(tmp_path):
    return tmp_path / "no-such-data-folder"


@pytest.mark.parametrize("trainer, kwargs, names", [
    ("mf", {"epochs": 0}, "epochs"),
    ("mf", {"dim": 0}, "dim"),
    ("mf", {"lr": -1.0}, "lr"),
    ("mf", {"tie_weight": -0.5}, "tie_weight"),
    ("mf", {"balance": "per-model"}, "balance"),
    ("mf", {"epoch": 3}, "epoch"),  # a misspelt option is not silently ignored
    ("mf", {"seed": -1}, "seed"),
    ("mf", {"max_prompts_per_source": 0}, "max_prompts_per_source"),
    ("mf", {"embedder": "no-such-embedder"}, "embedder"),
    ("mf", {"reference_embedder": 42}, "reference_embedder"),
    ("mf", {"sources": ["nosuch"]}, "nosuch"),
    ("mf", {"sources": ()}, "nothing to train on"),
    ("sw_ranking", {"n_tiers": 1}, "n_tiers"),
    ("sw_ranking", {"top_k": 0}, "top_k"),
    ("bert", {"dropout": 1.5}, "dropout"),
    ("bert", {"config": {"labels": "some-tiers"}}, "labels"),
    ("causal_llm", {"max_prompt_tokens": 4, "embedder": HashingEmbedder(8)}, "max_prompt_tokens"),
    ("causal_llm", {"config": "big"}, "config"),
    ("no_such_trainer", {}, "unknown trainer"),
])
def test_bad_arguments_fail_before_any_data_is_read(tmp_path, nowhere, trainer, kwargs, names):
    kwargs = {"out": tmp_path / "out", **kwargs}
    with pytest.raises(DataError, match=names) as info:
        train(trainer, data_dir=nowhere, progress=False, **kwargs)
    assert "no-such-data-folder" not in str(info.value)  # the argument is named, not the (missing) data
    assert not (tmp_path / "out").exists()


def test_bad_paths_are_named(tmp_path, nowhere):
    existing_file = tmp_path / "taken"
    existing_file.write_text("x")
    with pytest.raises(TrainingOptionError, match="out=.*taken.*existing file"):
        train("mf", out=existing_file, data_dir=nowhere, progress=False)
    with pytest.raises(TrainingOptionError, match="battles_files.*missing.csv"):
        train("mf", out=tmp_path / "o", battles_files=[tmp_path / "missing.csv"], data_dir=nowhere)
    (tmp_path / "b.txt").write_text("prompt,model_a,model_b,winner\n")
    with pytest.raises(TrainingOptionError, match="battles_files.*csv or .jsonl"):
        train("mf", out=tmp_path / "o", battles_files=[tmp_path / "b.txt"], data_dir=nowhere)
    with pytest.raises(UnknownSourceError, match="known: alpaca_eval, routerbench, zeroeval, llmrouter"):
        train("mf", out=tmp_path / "o", sources=["routerbench", "nosuch/task"], data_dir=nowhere)
    # the legacy entry points check the same way
    with pytest.raises(TrainingOptionError, match="epochs"):
        train_mf_command(out=tmp_path / "o", epochs=0, data_dir=nowhere)
    # with every argument good, the missing data folder is the error, saying how to give one
    with pytest.raises(DataError, match="no-such-data-folder.*does not exist.*--data-dir.*ROUTELLM_DATA_DIR"):
        train("mf", out=tmp_path / "o", data_dir=nowhere, progress=False)


def test_trainers_are_specs_whose_configs_make_a_cli():
    assert list(TRAINERS) == ["mf", "quality", "sw_ranking", "bert", "causal_llm"]
    for name in TRAINERS:
        spec = TRAINERS[name]
        assert spec.name == name and callable(spec.fit)
        for field_name, field in spec.config.model_fields.items():
            assert not field.is_required(), (name, field_name)
            assert field.description, (name, field_name)
        assert spec.description({"n_tiers": 10, "training": {}})
    with pytest.raises(TrainingOptionError, match="unknown trainer 'nope'; known: mf, quality, sw_ranking, bert, causal_llm"):
        TRAINERS["nope"]


def test_importing_the_package_and_the_specs_does_not_import_torch():
    code = ("import sys, routellm_integrations\n"
            "from routellm_integrations.training.registry import TRAINERS\n"
            "specs = [TRAINERS[n] for n in TRAINERS]\n"
            "from routellm_integrations.training import pipeline\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_one_card_renderer_for_every_router():
    config = {"router": "x", "embedder": "e", "embedding_dim": 8, "features": ["log_chars"], "models": ["a", "b"],
              "default_strong_model": "a", "default_weak_model": "b", "tiers": {"a": 0, "b": 1},
              "card": {"battles_by_source": {"alpaca_eval": 10, "routerbench/mbpp": 5},
                       "training_report": {"epochs": 2},
                       "validation": [{"router": "x", "apgr": 0.61234, "cpt50": 40.0, "n_prompts": 12}],
                       "benchmarks": [{"benchmark": "mt_bench", "router": "x", "apgr": 0.7, "cpt50": 30.0,
                                       "cpt80": 60.0}]}}
    card = render_model_card(config, "routellm train x --out o", "What x does.")
    assert card.startswith("# `x` router checkpoint\n\nWhat x does.\n")
    assert "| alpaca_eval | 10 | CC BY-NC 4.0 (non-commercial) |" in card and "**Licence note:**" in card
    assert "| routerbench/mbpp | 5 | MIT |" in card
    assert "| 0 | a |" in card and "epochs: 2" in card
    assert "| router | APGR | CPT(50%) | prompts |" in card and "| x | 0.612 | 40.0% | 12 |" in card
    assert "| mt_bench | x | 0.700 | 30.0% | 60.0% |" in card


def test_quality_trains_on_golden_labels_of_the_decontaminated_pool(tmp_path, isolated_cache):
    from routellm_integrations.training.pipeline import train

    emb = HashingEmbedder(dim=64)
    out = train("quality", out=tmp_path / "q", embedder=emb, reference_embedder=emb, max_prompts_per_source=20,
                epochs=3, evaluate=False, progress=False, calibration_folds=3)
    config = json.loads((out / "config.json").read_text())
    assert {p.name for p in out.iterdir()} == {"quality.safetensors", "config.json", "README.md"}
    report = config["card"]["training_report"]
    assert report["n_rows"] > 0 and report["n_val_rows"] == report["n_rows"]  # cross-fitted: every row
    assert config["training"]["calibration_folds"] == 3
    router = load_router(out, embedder=HashingEmbedder(dim=64))
    q = router.quality(["What is 2 + 2?", "Prove Fermat's last theorem."], ["gpt-4-1106-preview", "mixtral-8x7b-chat"])
    assert q.shape == (2, 2) and ((q > 0) & (q < 1)).all()
    with pytest.raises(DataError, match="golden labels"):
        train("quality", out=tmp_path / "q2", sources=["alpaca_eval"], embedder=emb, reference_embedder=emb,
              max_prompts_per_source=5, evaluate=False, validate=False, progress=False)


def test_quality_adapts_to_graded_answers_of_your_own_traffic(tmp_path, isolated_cache):
    """--scores: prompt, model, score rows (one model per prompt is enough); benchmark
    near-duplicates are dropped and counted; the head learns the file's pattern."""
    from routellm_integrations.evaluation.benchmarks import all_benchmark_prompts
    from routellm_integrations.paths import resolve_data_dir
    from routellm_integrations.training.pipeline import train

    bench_prompt = all_benchmark_prompts(resolve_data_dir(None))[0]
    rows = [{"prompt": bench_prompt, "model": "gpt-4o", "score": 1}]  # contaminated: must be dropped
    for i in range(120):
        sql = i % 2 == 0  # the cheap model fails every SQL question of this traffic, the big one none
        prompt = f"Write a SQL query number {i} joining orders and users" if sql else f"Say hello to user {i}"
        rows.append({"prompt": prompt, "model": "gpt-4o-mini", "score": 0 if sql else 1})
        if i % 3 == 0:  # some prompts graded for both models, most for one
            rows.append({"prompt": prompt, "model": "gpt-4o", "score": True})
    path = tmp_path / "graded.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    emb = HashingEmbedder(dim=64)
    out = train("quality", out=tmp_path / "q", sources=[], scores_files=[path], embedder=emb,
                reference_embedder=emb, epochs=150, evaluate=False, progress=False, lr=0.05)
    config = json.loads((out / "config.json").read_text())
    assert config["card"]["scores_decontamination"]["prompts_dropped"] == 1
    assert config["card"]["training_report"]["n_rows"] == len(rows) - 1
    router = load_router(out, embedder=HashingEmbedder(dim=64))
    q = router.quality(["Write a SQL query number 7 joining orders and users", "Say hello to user 7"],
                       ["gpt-4o-mini", "gpt-4o"])
    assert q[0, 0] < q[1, 0] - 0.2  # the cheap model: worse on SQL than on greetings
    assert q[0, 1] > q[0, 0]  # on SQL the big model is predicted better


@pytest.mark.parametrize("body, match", [
    ('{"prompt": "p", "model": "m", "score": 2}', r"in \[0, 1\]"),
    ('{"prompt": "p", "model": "m", "score": "lots"}', "must be a number"),
    ('{"prompt": "p", "model": "m"}', "'score' is missing"),
    ('{"prompt": "", "model": "m", "score": 1}', "'prompt' is missing"),
    ('{"prompt": "p", "model": "m", "score": 1}\n{"prompt": "p", "model": "m", "score": 0}', "already scored on line 1"),
    ('{"prompt": "p", "model": "m", "score": NaN}', "in \\[0, 1\\]"),
    ('[1, 2]', "expected an object"),
])
def test_a_bad_scores_row_is_named(tmp_path, body, match):
    from routellm_integrations.data.user_files import load_scores_file

    path = tmp_path / "s.jsonl"
    path.write_text(body + "\n")
    with pytest.raises(DataError, match=match):
        load_scores_file(path)
