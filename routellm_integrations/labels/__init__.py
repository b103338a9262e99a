"""Labels on a user's own traffic: judge labelling (a judge model compares both backends'
answers, as the RouteLLM paper's GPT-4-judge augmentation did), the store labels accumulate
in, shadow sampling from live traffic, and the label sets adaptation reads.

    from routellm_integrations.labels import LabelStore, OpenAIChatClient, label_prompts

    report = label_prompts(prompts, strong=OpenAIChatClient("gpt-4o"), weak=OpenAIChatClient("gpt-4o-mini"),
                           store=LabelStore("labels.sqlite"), budget=Budget(max_usd=5))

``routellm label`` is the same from the command line. :func:`judge_pair` judges one pair
(both orders) without any store, for reuse on live traffic.

- ``clients.py``: the judge and answer clients (the official OpenAI/Anthropic SDKs);
- ``judge.py``: the pairwise judgement, both orders; ``bounds.py``: its cost bounds;
- ``labelling.py``: :func:`label_prompts` (concurrent, budgeted, resumable);
- ``store.py``: the SQLite label store; ``labelset.py``: labels of one pair as adaptation reads them;
- ``shadow.py``: :class:`ShadowSampler`, labels from live traffic.
"""

from .clients import AnthropicChatClient, ChatClient, Completion, MissingCredentialsError, OpenAIChatClient
from .judge import JUDGE_PROMPT_TEMPLATE, JUDGE_SYSTEM_PROMPT, JudgeCall, JudgeResult, judge_pair, parse_verdict
from .labelling import LabellingReport, alabel_prompts, export_battles, label_prompts
from .labelset import LabelSet, battles_to_labels, load_battle_labels, load_outcome_labels
from .store import LabelStore, UnknownCallError, prompt_key, work_key

__all__ = ["AnthropicChatClient", "ChatClient", "Completion", "JUDGE_PROMPT_TEMPLATE", "JUDGE_SYSTEM_PROMPT",
           "JudgeCall", "JudgeResult", "LabelSet", "LabelStore", "LabellingReport", "MissingCredentialsError",
           "OpenAIChatClient", "UnknownCallError", "alabel_prompts", "battles_to_labels", "export_battles",
           "judge_pair", "label_prompts", "load_battle_labels", "load_outcome_labels", "parse_verdict", "prompt_key",
           "work_key"]
