"""Evaluation on the RouteLLM benchmarks (MT-Bench, MMLU, GSM8K) or a user's own pairs:
APGR and CPT as the paper computes them, tables and quality curves; cascades that check the
cheap answer, against the escalation share and against total cost (:mod:`.cascade`)."""

from .answers import ANSWER_SETS, AnswerSet, load_answer_outcomes, load_answer_set
from .benchmarks import (BENCHMARKS, Benchmark, all_benchmark_prompts, canonical_name,
                         load_benchmark, load_pair_outcomes)
from .cascade import (PRICE_RATIOS, PolicyResult, bootstrap, cost_normalised_apgr, evaluate_cascade,
                      evaluate_hybrid, evaluate_router_cost, format_cascade_table, policy)
from .metrics import (CurvePoint, EvaluationResult, evaluate_scores, format_table,
                      paired_bootstrap_apgr)
from .plots import plot_quality_curves

__all__ = [
    "ANSWER_SETS",
    "BENCHMARKS",
    "PRICE_RATIOS",
    "AnswerSet",
    "Benchmark",
    "CurvePoint",
    "EvaluationResult",
    "PolicyResult",
    "all_benchmark_prompts",
    "bootstrap",
    "canonical_name",
    "cost_normalised_apgr",
    "evaluate_cascade",
    "evaluate_hybrid",
    "evaluate_router_cost",
    "evaluate_scores",
    "format_cascade_table",
    "format_table",
    "load_answer_outcomes",
    "load_answer_set",
    "load_benchmark",
    "load_pair_outcomes",
    "paired_bootstrap_apgr",
    "plot_quality_curves",
    "policy",
]
