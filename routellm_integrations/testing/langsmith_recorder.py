"""A local LangSmith endpoint that records the runs a tracer posts, for offline trace tests.

    with LangSmithRecorder() as recorder:
        client = langsmith.Client(api_url=recorder.url, api_key="local")
        with langsmith.tracing_context(enabled=True, client=client):
            chain.invoke(...)
        client.flush()
    recorder.llm_runs()   # the posted LLM runs, with tags, extra.metadata and outputs

It answers ``GET /info`` with a batch-ingest config that asks for plain JSON batches
(``POST /runs/batch``) and refuses the multipart endpoint, which makes the client fall
back to batches (checked with langsmith 0.15).
"""

from __future__ import annotations

from typing import Any

from .openai_compat import OpenAICompatServer, Response

_INFO = {"version": "0.0.0", "batch_ingest_config": {
    "use_multipart_endpoint": False, "size_limit": 100, "size_limit_bytes": 20_971_520,
    "scale_up_nthreads_limit": 16, "scale_up_qsize_trigger": 1000, "scale_down_nempty_trigger": 4}}


class LangSmithRecorder(OpenAICompatServer):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[dict[str, Any]] = []
        self.routes = {("GET", "/info"): lambda req: Response(200, _INFO),
                       ("POST", "/runs/batch"): self._record,
                       ("POST", "/runs/multipart"): lambda req: Response.error(404, "use /runs/batch")}

    def _record(self, req: Any) -> Response:
        with self._lock:
            self.batches.append(req.json or {})
        return Response(200, {})

    def runs(self) -> list[dict[str, Any]]:
        """Every posted run create and update, in arrival order."""
        with self._lock:
            return [r for body in self.batches for r in body.get("post", []) + body.get("patch", [])]

    def llm_runs(self) -> list[dict[str, Any]]:
        """The LLM runs that carry metadata (their creates, or updates that repeat it)."""
        return [r for r in self.runs() if r.get("run_type") == "llm" and (r.get("extra") or {}).get("metadata")]
