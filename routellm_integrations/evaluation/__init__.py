"""Evaluation on the RouteLLM benchmarks (MT-Bench, MMLU, GSM8K) or a user's own pairs:
APGR and CPT as the paper computes them, tables and quality curves."""

from .benchmarks import (BENCHMARKS, Benchmark, all_benchmark_prompts, canonical_name,
                         load_benchmark, load_pair_outcomes)
from .metrics import (CurvePoint, EvaluationResult, evaluate_scores, format_table,
                      paired_bootstrap_apgr)
from .plots import plot_quality_curves

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "CurvePoint",
    "EvaluationResult",
    "all_benchmark_prompts",
    "canonical_name",
    "evaluate_scores",
    "format_table",
    "load_benchmark",
    "load_pair_outcomes",
    "paired_bootstrap_apgr",
    "plot_quality_curves",
]
