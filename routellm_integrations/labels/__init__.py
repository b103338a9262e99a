"""Labels on a user's own traffic: the store they accumulate in and the sets adaptation reads."""

from .labelset import LabelSet, battles_to_labels, load_battle_labels, load_outcome_labels
from .store import LabelStore, UnknownCallError, prompt_key, work_key

__all__ = ["LabelSet", "LabelStore", "UnknownCallError", "battles_to_labels", "load_battle_labels",
           "load_outcome_labels", "prompt_key", "work_key"]
