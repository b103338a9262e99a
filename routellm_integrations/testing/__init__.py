"""Local servers that speak the OpenAI and Anthropic wire formats (JSON and SSE streaming,
tool calls, usage) on 127.0.0.1, answering from a deterministic script.

The project's own tests run the real provider clients against them; they are shipped so
that your chains, agents and routing can be tested and demonstrated offline too::

    from routellm_integrations.testing import OpenAICompatServer
    with OpenAICompatServer() as server:
        llm = ChatOpenAI(model="gpt-4o", base_url=server.base_url, api_key="local")
"""

from .anthropic_compat import AnthropicCompatServer
from .openai_compat import ChatScript, OpenAICompatServer, Reply

__all__ = ["AnthropicCompatServer", "ChatScript", "OpenAICompatServer", "Reply"]
