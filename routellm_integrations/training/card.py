"""The model card (``README.md`` beside the weights) of every trained checkpoint: what the
method is, what it was trained on under which licences, what decontamination dropped,
and how it scores on held-out pool prompts and (optionally) the paper's benchmarks.

Everything is read from the checkpoint's config (``config["card"]`` holds the training
facts the pipeline gathered); the trainer contributes only the method's description.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

LICENCES = {
    "alpaca_eval": ("tatsu-lab/alpaca_eval results", "CC BY-NC 4.0 (non-commercial)"),
    "routerbench": ("RouterBench (withmartian), via shuhao02/RouterDC", "MIT"),
    "zeroeval": ("yuchenlin/ZeroEval result_dirs", "Apache-2.0"),
    "llmrouter": ("ulab-uiuc/LLMRouter data", "MIT"),
}

#: validation/benchmark row keys -> (column title, format)
_COLUMNS = {"benchmark": ("benchmark", "{}"), "set": ("set", "{}"), "router": ("router", "{}"),
            "apgr": ("APGR", "{:.3f}"), "cpt50": ("CPT(50%)", "{:.1f}%"), "cpt80": ("CPT(80%)", "{:.1f}%"),
            "folds": ("folds", "{}"), "n_prompts": ("prompts", "{}")}


def family(source: str) -> str:
    return source.split("/", 1)[0]


def licence(source: str) -> str:
    return LICENCES.get(family(source), ("", "see source"))[1]


def _table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """A markdown table of ``rows`` over the known columns they have, in :data:`_COLUMNS` order."""
    keys = [k for k in _COLUMNS if any(k in r for r in rows)]
    head = [_COLUMNS[k][0] for k in keys]
    align = ["---:" if _COLUMNS[k][1] != "{}" or k in ("folds", "n_prompts") else "---" for k in keys]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for r in rows:
        cells = [_COLUMNS[k][1].format(r[k]) if r.get(k) is not None else "" for k in keys]
        out.append("| " + " | ".join(cells) + " |")
    return out


def render_model_card(config: Mapping[str, Any], command: str, description: str = "") -> str:
    """Markdown for ``README.md``; ``description`` says what the method is (the trainer's
    ``describe``)."""
    meta = config.get("card", {})
    by_source = meta.get("battles_by_source", {})
    features = config.get("features") or []
    lines = [f"# `{config['router']}` router checkpoint", ""]
    if description:
        lines += [description, ""]
    lines += [f"- Embedding space: `{config['embedder']}` ({config['embedding_dim']}-d)"
              + (", features: " + ", ".join(f"`{f}`" for f in features) if features else ""),
              f"- Default pair: strong `{config['default_strong_model']}`, weak `{config['default_weak_model']}`;"
              f" {len(config.get('models', []))} models known.",
              f"- Reproduce: `{command}`", "", "## Training data", "",
              "| source | battles (after decontamination) | licence |", "|---|---:|---|"]
    lines += [f"| {source} | {n:,} | {licence(source)} |" for source, n in sorted(by_source.items())]
    if any(licence(s).startswith("CC BY-NC") for s in by_source):
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
    everyday = meta.get("everyday_prompts")
    if everyday:
        lines += ["", "## Everyday prior", "",
                  f"{everyday['kept']:,} hand-written prompts (`routellm_integrations/training/data/"
                  f"everyday_prompts.jsonl`: everyday ones against hard and open-ended tasks; written for this "
                  f"project) after dropping {everyday['dropped']:,} near-duplicates of benchmark prompts by the "
                  "same rule, with pool prompts as further task examples."]
    if "tiers" in config:
        by_tier: dict[int, list[str]] = {}
        for m, t in config["tiers"].items():
            by_tier.setdefault(t, []).append(m)
        lines += ["", "## Tiers (global Bradley-Terry rating, quantiles; 0 = strongest)", "",
                  "Ratings across sources are only loosely comparable (the sources share few models).", "",
                  "| tier | models |", "|---:|---|"]
        lines += [f"| {t} | {', '.join(sorted(by_tier[t]))} |" for t in sorted(by_tier)]
    for key, title in (("training_report", "Training"), ("index", "Index")):
        if meta.get(key):
            lines += ["", f"## {title}", "", "```", *(f"{k}: {v}" for k, v in meta[key].items()), "```"]
    val = meta.get("validation")
    if val:
        lines += ["", "## Validation (held-out prompts of the training pool; never the benchmarks)", ""]
        if any("folds" in r for r in val):
            lines += ["Mean over prompt folds; the router is refitted without the held-out fold each time. Per "
                      "task: a pair of models ~20 accuracy points apart on it; `default-pair`: GPT-4 Turbo vs "
                      "Mixtral (RouterBench).", ""]
        else:
            lines += ["The default pair on the prompts held out of training.", ""]
        lines += _table(val)
    bench = meta.get("benchmarks")
    if bench:
        lines += ["", "## Benchmarks (evaluation only; never trained or tuned on)", "", *_table(bench)]
    lines += ["", "## Limits", "",
              "Trained on single prompts (first turns); multi-turn routing uses the last user message. "
              "The training pool's golden labels come mostly from maths, code and multiple-choice tasks.", ""]
    return "\n".join(lines)
