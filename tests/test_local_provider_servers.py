"""The local OpenAI-format server the tests and demos run against behaves like a provider
when a client hangs up: a reset connection is not a server fault and prints nothing (the
stdlib printed a traceback into whichever test was running then)."""

from __future__ import annotations

import socket
import struct
import time

import openai

from routellm_integrations.testing import OpenAICompatServer


def test_a_client_that_resets_its_connection_prints_nothing(capfd):
    with OpenAICompatServer() as server:
        host, port = server.url.removeprefix("http://").split(":")
        for _ in range(5):
            s = socket.create_connection((host, int(port)))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
            s.close()
        time.sleep(0.5)  # the handler threads meet the resets
        # and the server still answers
        reply = openai.OpenAI(base_url=server.base_url, api_key="sk-test").chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert reply.choices[0].message.content
    assert "Traceback" not in capfd.readouterr().err
