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
    lines += _verifier_section(card.get("verifier"), card.get("verifier_note"))
    return "\n".join(lines)


def _verifier_section(report: Mapping[str, Any] | None, note: str | None) -> list[str]:
    """The answer verifier's part of the card, when the labels carried answers."""
    if not report:
        return ["## Answer verifier", "", f"Not fitted: {note}", ""] if note else []
    served = "served" if report.get("served") else "**not served**"
    lines = ["## Answer verifier", "",
             f"A verifier reading the prompt and the weak model's answer (`{report.get('embedder')}` embeddings of "
             f"both, plus the zero-label answer checks) is {served}: {report.get('reason', '')}. "
             "`load_verifier(folder)` loads it; `escalate_if=` takes it.",
             f"- Labels with answers: {report.get('n_labels')} ({report.get('n_informative')} on which the models "
             f"differ). Default threshold {report.get('threshold', 0.5):.2f} (P(strong better) >= it) escalated "
             f"{100 * float(report.get('share_at_threshold', 0.0)):.0f}% of them out of fold.",
             ""]
    if note:
        lines += [f"- {note}", ""]
    lines += ["| escalation order | APGR | interval | |", "|---|---:|---|---|"]
    for c in report.get("candidates", []):
        lines.append(f"| {c['name']} | {c['apgr']:.3f} | [{c['lo']:.3f}, {c['hi']:.3f}] | {c.get('detail', '')} |")
    lines += ["", "A cascade always pays the cheap call first: compare spend, not only APGR, before serving it.", ""]
    return lines
