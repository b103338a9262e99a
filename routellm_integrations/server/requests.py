"""The OpenAI chat-completions request, checked before any provider is called.

:func:`validate_chat_request` takes the parsed JSON body and raises an
:class:`~.errors.ApiError` (400, OpenAI's format, ``param`` naming the field, e.g.
``messages[0].content[1].image_url.url``) for a request a provider would refuse:

- nesting deeper than ``max_depth`` (any field, known or not; checked without recursion);
- ``model`` (a non-empty string) and ``messages`` (a non-empty array of messages with a
  known ``role``; ``content`` a string, an array of content parts or, for an assistant,
  null; each part a ``text``, ``image_url``, ``input_audio``, ``file`` or ``refusal``
  part with its fields);
- ``tools`` (functions with a name and an object of parameters), ``tool_choice``
  (``none``/``auto``/``required`` or an object), ``response_format`` (``text``,
  ``json_object`` or ``json_schema`` with its schema), ``stream`` (a boolean),
  ``stream_options`` (an object), ``n``, ``max_tokens``/``max_completion_tokens``,
  ``temperature``, ``top_p``, the penalties, ``stop``, ``seed``, ``logprobs``... each of
  its type and range.

Unknown top-level fields pass through untouched (OpenAI adds fields; a provider that does
not know one answers for it). The body sent on is the client's own, not a re-dump.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ApiError

__all__ = ["ChatCompletionRequest", "Message", "depth_violation", "param_of", "validate_chat_request"]

_STRICT = ConfigDict(strict=True, extra="allow")


class _Part(BaseModel):
    model_config = _STRICT


class TextPart(_Part):
    type: Literal["text"]
    text: str


class ImageURL(_Part):
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Part):
    type: Literal["image_url"]
    image_url: ImageURL


class InputAudio(_Part):
    data: str
    format: str


class AudioPart(_Part):
    type: Literal["input_audio"]
    input_audio: InputAudio


class FilePart(_Part):
    type: Literal["file"]
    file: dict[str, Any]


class RefusalPart(_Part):
    type: Literal["refusal"]
    refusal: str


ContentPart = Annotated[TextPart | ImagePart | AudioPart | FilePart | RefusalPart, Field(discriminator="type")]
#: parts that are not text: the budget's input bound counts text only
NON_TEXT_PARTS = ("image_url", "input_audio", "file")


class FunctionCall(_Part):
    name: str
    arguments: str


class ToolCall(_Part):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(_Part):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _content(self) -> Message:
        if self.content is None and self.role in ("system", "developer", "user", "tool"):
            raise ValueError(f"a {self.role} message needs content")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        return self


class FunctionDef(_Part):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Part):
    type: Literal["function"]
    function: FunctionDef


class NamedToolChoice(_Part):
    type: Literal["function"]
    function: dict[str, Any]


class JSONSchema(_Part):
    name: str = Field(min_length=1, max_length=64)
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None
    description: str | None = None


class ResponseFormat(_Part):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchema | None = None

    @model_validator(mode="after")
    def _schema(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type json_schema needs a json_schema object")
        return self


class StreamOptions(_Part):
    include_usage: bool | None = None


class ChatCompletionRequest(_Part):
    """An OpenAI chat-completions request (unknown fields allowed: they pass through)."""

    model: str = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] | None = Field(None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, ge=1, le=128)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    logit_bias: dict[str, float] | None = None
    user: str | None = None


def depth_violation(value: Any, max_depth: int) -> list[Any] | None:
    """The path to the first array or object nested deeper than ``max_depth``, or None
    (iterative: a hostile depth costs no recursion)."""
    stack: list[tuple[Any, int, list[Any]]] = [(value, 1, [])]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        if depth > max_depth:
            return path
        for key, child in items:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1, path + [key] if len(path) < 8 else path))
    return None


def param_of(loc: tuple[Any, ...] | list[Any]) -> str:
    """A pydantic location as OpenAI names a parameter: ``messages[0].content[1].text``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier():
            out += f".{part}" if out else part
    return out


def validate_chat_request(body: Any, max_depth: int = 64) -> ChatCompletionRequest:
    """The checked request; :class:`ApiError` (400, naming the field) when it is not one."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    too_deep = depth_violation(body, max_depth)
    if too_deep is not None:
        param = param_of(too_deep[:4]) or None
        raise ApiError(400, f"'{param}' is nested deeper than {max_depth} levels", param=param,
                       code="too_deep")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ApiError(400, "you must provide a model parameter, e.g. 'router-mf-share0.3'", param="model",
                       code="missing_model")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise ApiError(400, "'messages' must be a non-empty array", param="messages")
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as exc:
        err = _first(exc)
        loc: list[Any] = []
        for p in err.get("loc", ()):
            if not _is_union_label(p, err) and not (loc and p == loc[-1]):  # a tagged union repeats its tag
                loc.append(p)
        param = param_of(loc) or None
        msg = err.get("msg", "invalid")
        raise ApiError(400, f"Invalid value for '{param}': {msg}" if param else msg, param=param,
                       code="invalid_value") from None


def _first(exc: ValidationError) -> dict[str, Any]:
    errors = exc.errors(include_url=False)
    # a union reports one error per member: the deepest one says what is wrong
    return max(errors, key=lambda e: len(e.get("loc", ()))) if errors else {}


def _is_union_label(part: Any, err: dict[str, Any]) -> bool:
    """Pydantic names a union's member in the location (``str``, ``list[...]``, the
    tag of a tagged union, a model's class name): not a field of the request."""
    if not isinstance(part, str):
        return False
    return part in _UNION_LABELS or "[" in part or part in _MODEL_NAMES


_UNION_LABELS = {"str", "int", "float", "bool", "none", "list", "dict", "literal"}
_MODEL_NAMES = {cls.__name__ for cls in (TextPart, ImagePart, AudioPart, FilePart, RefusalPart, NamedToolChoice,
                                         Message, Tool, ResponseFormat, StreamOptions)}
