"""Model cards: what a checkpoint was trained on, under which licences, and how it scores."""

from __future__ import annotations

from typing import Any, Mapping

LICENCES = {
    "alpaca_eval": ("tatsu-lab/alpaca_eval results", "CC BY-NC 4.0 (non-commercial)"),
    "routerbench": ("RouterBench (withmartian), via shuhao02/RouterDC", "MIT"),
    "zeroeval": ("yuchenlin/ZeroEval result_dirs", "Apache-2.0"),
    "llmrouter": ("ulab-uiuc/LLMRouter data", "MIT"),
}


def family(source: str) -> str:
    return source.split("/", 1)[0]


def render_model_card(config: Mapping[str, Any], command: str) -> str:
    """Markdown for ``README.md`` beside the weights; reads everything from ``config``."""
    meta = config.get("card", {})
    families = sorted({family(s) for s in meta.get("battles_by_source", {})})
    non_commercial = any(LICENCES.get(f, ("", ""))[1].startswith("CC BY-NC") for f in families)
    lines = [
        f"# `{config['router']}` router checkpoint",
        "",
        "Matrix-factorisation router (RouteLLM, Ong et al. 2024): P(strong model beats weak model)"
        " from a prompt's embedding and structural features.",
        "",
        f"- Embedding space: `{config['embedder']}` ({config['embedding_dim']}-d), features: "
        + ", ".join(f"`{f}`" for f in config["features"]),
        f"- Default pair: strong `{config['default_strong_model']}`, weak `{config['default_weak_model']}`;"
        f" {len(config['models'])} models known (any two can be paired at serving time).",
        f"- Reproduce: `{command}`",
        "",
        "## Training data",
        "",
        "| source | battles (after decontamination) | licence |",
        "|---|---:|---|",
    ]
    for source, n in sorted(meta.get("battles_by_source", {}).items()):
        lines.append(f"| {source} | {n:,} | {LICENCES.get(family(source), ('', 'see source'))[1]} |")
    if non_commercial:
        lines += ["", "**Licence note:** trained partly on AlpacaEval data (CC BY-NC 4.0): the checkpoint "
                  "inherits the non-commercial restriction. Retrain with `--sources routerbench zeroeval "
                  "llmrouter` for a checkpoint free of it."]
    decon = meta.get("decontamination")
    if decon:
        lines += ["", "## Decontamination", "",
                  f"Every training prompt within cosine {decon['threshold']} of any benchmark prompt "
                  f"(MMLU, GSM8K, MT-Bench; `{decon['embedder']}`) or equal to one after normalisation "
                  "was dropped:", "", "| source | prompts dropped | battles dropped |", "|---|---:|---:|"]
        for s, row in sorted(decon["by_source"].items()):
            lines.append(f"| {s} | {row['prompts_dropped']:,} / {row['prompts_seen']:,} | {row['rows_dropped']:,} |")
        lines.append(f"| **total** | {decon['prompts_dropped']:,} / {decon['prompts_seen']:,} | "
                     f"{decon['rows_dropped']:,} |")
    train = meta.get("training_report")
    if train:
        lines += ["", "## Training", "",
                  f"{train['n_train_battles']:,} training / {train['n_val_battles']:,} held-out battles over "
                  f"{train['n_prompts']:,} prompts and {train['n_models']} models; {train['epochs']} epochs "
                  f"in {train['seconds']:.0f} s. Held-out pair accuracy (non-tie battles): "
                  f"{train['val_pair_accuracy']:.3f}." if train.get("val_pair_accuracy") is not None else ""]
    val = meta.get("validation")
    if val:
        lines += ["", "## Validation (held-out prompts of the training pool, default pair)", "",
                  "| router | APGR | CPT(50%) | prompts |", "|---|---:|---:|---:|"]
        for row in val:
            lines.append(f"| {row['router']} | {row['apgr']:.3f} | {row['cpt50']:.1f}% | {row['n_prompts']} |")
    bench = meta.get("benchmarks")
    if bench:
        lines += ["", "## Benchmarks (evaluation only; never trained on)", "",
                  "| benchmark | router | APGR | CPT(50%) | CPT(80%) |", "|---|---|---:|---:|---:|"]
        for row in bench:
            lines.append(f"| {row['benchmark']} | {row['router']} | {row['apgr']:.3f} | {row['cpt50']:.1f}% "
                         f"| {row['cpt80']:.1f}% |")
    lines += ["", "## Limits", "",
              "Trained on single prompts (first turns); multi-turn routing uses the last user message. "
              "The training pool's golden labels come mostly from maths, code and multiple-choice tasks.", ""]
    return "\n".join(lines)
