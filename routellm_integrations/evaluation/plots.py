"""Quality-vs-cost curves, the paper's figure: one line per router on one benchmark.

matplotlib is imported inside the function (with the Agg backend) so that importing the
package stays fast and never needs a display.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..errors import DataError
from .metrics import EvaluationResult


def plot_quality_curves(results: Sequence[EvaluationResult],
                        path: str | os.PathLike[str]) -> Path:
    """Write a PNG of quality against strong-call % for routers evaluated on one benchmark.

    Dashed horizontal lines mark the all-strong and all-weak quality. Returns the path.
    """
    results = list(results)
    if not results:
        raise DataError("plot_quality_curves needs at least one result")
    benchmarks = {r.benchmark for r in results}
    if len(benchmarks) > 1:
        raise DataError(f"results span several benchmarks ({', '.join(sorted(benchmarks))}); "
                        "plot one benchmark at a time")
    from ..extras import require

    matplotlib = require("matplotlib", extra="plots", feature="plotting quality curves")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    first = results[0]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        for r in results:
            pts = sorted(r.points, key=lambda p: p.strong_pct)
            ax.plot([p.strong_pct for p in pts], [p.quality for p in pts], marker="o",
                    markersize=3, label=f"{r.router} (APGR {r.apgr:.3f})")
        ax.axhline(first.strong_quality, linestyle="--", color="tab:red",
                   label=f"strong: {first.strong_model}")
        ax.axhline(first.weak_quality, linestyle="--", color="tab:gray",
                   label=f"weak: {first.weak_model}")
        ax.set_xlabel("calls to the strong model (%)")
        unit = " (%)" if first.outcome_kind == "accuracy" else ""
        ax.set_ylabel(f"{first.outcome_kind}{unit}")
        ax.set_title(f"{first.benchmark} (n={first.n_prompts})")
        ax.set_xlim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        fig.tight_layout()
        out = Path(path).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png", dpi=120)
    finally:
        plt.close(fig)
    return out
