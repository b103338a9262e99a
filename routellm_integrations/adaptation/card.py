"""The model card of an adapted router: which labels, how many, what the guard saw."""

from __future__ import annotations

from typing import Any, Mapping


def render_adapted_card(config: Mapping[str, Any], command: str | None) -> str:
    card = config.get("card", {})
    base = config.get("base") or {}
    base_name = base.get("router") or f"folder `{base.get('folder')}`" if base else "none"
    lines = [
        "# Adapted router",
        "",
        f"A `{base_name}` router adapted to labelled prompts of one workload "
        f"(strong `{config.get('strong_model')}`, weak `{config.get('weak_model')}`).",
        "",
        f"- **Serves: `{config.get('serves')}`.** {config.get('reason', '')}",
        f"- Labels: {card.get('n_labels')} prompts, {card.get('n_informative')} on which the two models differ; "
        f"sources: {', '.join(card.get('sources', [])) or 'n/a'}. These are your data: their licence is yours.",
        f"- Head: {card.get('penalty')} on `{card.get('embedder')}` embeddings, structural features "
        "and the base score; chosen by cross-validation on the labels only.",
        "- Base: the base router's own card applies to it.",
    ]
    if command:
        lines.append(f"- Reproduce: `{command}`")
    lines += ["", "## Cross-validated APGR on the labels (95% bootstrap interval)", "",
              "| candidate | APGR | interval | |", "|---|---:|---|---|"]
    for c in card.get("candidates", []):
        lines.append(f"| {c['name']} | {c['apgr']:.3f} | [{c['lo']:.3f}, {c['hi']:.3f}] | {c.get('detail', '')} |")
    lines += ["", "APGR 0.5 is random routing; 1.0 recovers the strong model's whole lead at every share.", ""]
    return "\n".join(lines)
