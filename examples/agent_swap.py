"""An existing `create_agent` tool-calling agent, with `ChatOpenAI` swapped for `RoutedChat`.

The agent code is unchanged; only the model line differs. Each model step prints where
it went, with the router's score and the step's cost.

    python examples/agent_swap.py
"""

from __future__ import annotations

from langchain.agents import create_agent
from langchain_core.tools import tool

from backends import tool_calling_pair
from langchain_routellm import RoutedChat, routellm_cost_tracker


@tool
def get_weather(city: str) -> str:
    """Today's weather in a city."""
    return f"Sunny and 21 C in {city}"


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def main() -> list[dict]:
    rows = []
    with tool_calling_pair() as (strong, weak), routellm_cost_tracker() as cost:
        # before: llm = ChatOpenAI(model="gpt-4o")
        llm = RoutedChat(strong=strong, weak=weak, router="mf")  # 30% of calls strong, held online
        agent = create_agent(llm, tools=[get_weather, multiply])
        for question in ("What's the weather in Paris today? You can use get_weather.",
                         "Use multiply on 17 and 23, then explain step by step how long multiplication works "
                         "and prove that it gives the right answer for every pair of positive integers."):
            result = agent.invoke({"messages": [("user", question)]})
            for step in (m for m in result["messages"] if m.type == "ai"):
                info = step.response_metadata["routellm"]
                rows.append({"question": question, "route": info["route"], "model": info["model"],
                             "score": info["score"], "tools": [c["name"] for c in step.tool_calls]})
                print(f"{info['route']:6} {info['model']:28} score={info['score'] if info['score'] is None else round(info['score'], 3)!s:6} "
                      f"tools={','.join(c['name'] for c in step.tool_calls) or '-':12} {question[:50]}")
    print(cost)
    return rows


if __name__ == "__main__":
    main()
