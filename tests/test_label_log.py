"""Labelling a traffic log on either engine (``routellm label --engine ray``): Ray Data
workers label batches into one SQLite store over the local OpenAI-format server; the
merged report adds up and a rerun pays for nothing."""

from __future__ import annotations

import json

import pytest

from routellm_integrations.cli import main
from routellm_integrations.labels import LabelStore
from routellm_integrations.scale.label import ClientSpec, label_log
from routellm_integrations.testing.openai_compat import Reply


def judge(turn):
    if any("impartial judge" in t for t in turn.texts):
        a = turn.last_user_text.split("[The Start of Assistant A's Answer]")[1].split("[The End")[0]
        return Reply(text="[[A]]" if "gpt-4o." in a else "[[B]]")
    return None


@pytest.fixture(scope="module")
def ray_cluster():
    import os

    import ray

    os.environ["ROUTELLM_TEST_KEY"] = "sk-test"  # workers inherit the driver's environment
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def write_log(path, n: int) -> None:
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"q{i}", "prompt": f"question number {i}?"}) + "\n")


def specs(server):
    return [ClientSpec("openai", m, server.base_url, "ROUTELLM_TEST_KEY") for m in ("gpt-4o", "gpt-4o-mini")]


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_label_log_on_both_engines_and_resume(openai_server, tmp_path, ray_cluster, engine):
    openai_server.chat.responder = judge
    write_log(tmp_path / "log.jsonl", 30)
    strong, weak = specs(openai_server)
    store = tmp_path / "labels.sqlite"
    report = label_log(tmp_path / "log.jsonl", store=store, strong=strong, weak=weak, engine=engine,
                       num_workers=2, batch_size=8)
    assert report.n_prompts == 30 and report.n_labelled == 30 and report.verdicts["strong"] == 30
    assert report.n_paid_calls == 30 * 4  # two answers and two judge orders per prompt
    with LabelStore(store) as s:
        labels = s.label_set()
    assert len(labels) == 30 and (labels.strong == 1.0).all()
    calls = len(openai_server.requests_to("/v1/chat/completions"))
    again = label_log(tmp_path / "log.jsonl", store=store, strong=strong, weak=weak, engine=engine,
                      num_workers=2, batch_size=8)
    assert again.n_already_labelled == 30 and again.n_paid_calls == 0 and again.cost_usd == 0
    assert len(openai_server.requests_to("/v1/chat/completions")) == calls


def test_ray_budget_is_split_between_workers(openai_server, tmp_path, ray_cluster):
    openai_server.chat.responder = judge
    write_log(tmp_path / "log.jsonl", 40)
    strong, weak = specs(openai_server)
    cap = 0.004
    report = label_log(tmp_path / "log.jsonl", store=tmp_path / "b.sqlite", strong=strong, weak=weak,
                       engine="ray", num_workers=2, batch_size=5, max_usd=cap, concurrency=1)
    per_prompt = report.cost_usd / max(1, report.n_labelled)
    assert 0 < report.n_labelled < 40 and report.n_unlabelled_budget == 40 - report.n_labelled
    assert report.cost_usd <= cap + 2 * 2 * per_prompt  # at most about one prompt over per worker
    assert report.max_usd == cap


def test_cli_label_engine_ray(openai_server, tmp_path, ray_cluster, capsys, monkeypatch):
    openai_server.chat.responder = judge
    monkeypatch.setenv("ROUTELLM_TEST_KEY", "sk-test")
    write_log(tmp_path / "log.jsonl", 12)
    code = main(["label", "--prompts", str(tmp_path / "log.jsonl"), "--store", str(tmp_path / "c.sqlite"),
                 "--strong-model", "gpt-4o", "--weak-model", "gpt-4o-mini", "--base-url", openai_server.base_url,
                 "--api-key-env", "ROUTELLM_TEST_KEY", "--engine", "ray", "--workers", "2", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert json.loads(out)["n_labelled"] == 12 and "sk-test" not in out
