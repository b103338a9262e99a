"""Judge labelling: label a user's own prompts by asking a judge model which backend's
answer is better (the RouteLLM paper's GPT-4-judge augmentation, on one's own traffic).

    from routellm_integrations.labelling import OpenAIChatClient, label_prompts
    from routellm_integrations.labels import LabelStore

    report = label_prompts(prompts, strong=OpenAIChatClient("gpt-4o"), weak=OpenAIChatClient("gpt-4o-mini"),
                           store=LabelStore("labels.sqlite"), budget=Budget(max_usd=5))

``routellm label`` is the same from the command line. :func:`judge_pair` judges one pair
(both orders) without any store, for reuse on live traffic.
"""

from .clients import AnthropicChatClient, ChatClient, Completion, MissingCredentialsError, OpenAIChatClient
from .judge import JUDGE_PROMPT_TEMPLATE, JUDGE_SYSTEM_PROMPT, JudgeCall, JudgeResult, judge_pair, parse_verdict
from .run import LabellingReport, alabel_prompts, export_battles, label_prompts

__all__ = ["AnthropicChatClient", "ChatClient", "Completion", "JUDGE_PROMPT_TEMPLATE", "JUDGE_SYSTEM_PROMPT",
           "JudgeCall", "JudgeResult", "LabellingReport", "MissingCredentialsError", "OpenAIChatClient",
           "alabel_prompts", "export_battles", "judge_pair", "label_prompts", "parse_verdict"]
