"""Typed errors. Every failure a user can cause names the problem in its message.

All inherit from :class:`RouteLLMError` so callers can catch the family, and from the
matching builtin (``ValueError``, ``KeyError``, ``FileNotFoundError``) so code written
against the builtins keeps working.
"""

from __future__ import annotations


class RouteLLMError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidPromptError(RouteLLMError, ValueError):
    """A prompt batch was empty, or held something that is not a non-empty string."""


class InvalidThresholdError(RouteLLMError, ValueError):
    """A threshold or target fraction lay outside [0, 1] or was not a number."""


class UnknownRouterError(RouteLLMError, KeyError):
    """``load_router`` was given a name that is neither registered nor a checkpoint folder."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


class CheckpointError(RouteLLMError, ValueError):
    """A checkpoint folder is missing a file, or a file is corrupt or inconsistent."""


class UnknownModelError(RouteLLMError, KeyError):
    """A strong/weak model name that the checkpoint was not trained on."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class DataError(RouteLLMError, ValueError):
    """Training or benchmark data is missing, malformed, or not where it was said to be."""


class EmbedderError(RouteLLMError, RuntimeError):
    """An embedder could not be loaded or could not embed (e.g. a remote API failed)."""


class InvalidRouteError(RouteLLMError, ValueError):
    """A forced route that is neither ``"strong"`` nor ``"weak"``."""


class UnpricedModelWarning(UserWarning):
    """A model has no entry in the price table: its calls are reported as unpriced
    (cost ``None``), never as $0. Warned once per model and price table."""


class PriceTableError(RouteLLMError, ValueError):
    """A price entry is malformed (negative, not a number, missing input/output price)."""


class InvalidUsageError(RouteLLMError, ValueError):
    """A token count reported for a call is not a usable count: not a number, not finite,
    negative, or above ``costs.MAX_TOKENS_PER_CALL``. The message names the field and value."""


class LedgerError(RouteLLMError, ValueError):
    """A ledger entry that cannot be added: an unknown status or a cost that is not a
    finite, non-negative number of USD."""


class BudgetExceeded(RouteLLMError):
    """A spend or strong-call cap is reached and the budget's policy is to refuse the call."""


class BudgetConfigError(RouteLLMError, ValueError):
    """A budget that cannot keep its promise as configured, e.g. a dollar cap over a model
    the price table cannot price (its calls could never be counted against the cap)."""


class MissingExtraError(RouteLLMError, ImportError):
    """An optional feature needs a package extra that is not installed. The message names
    the ``pip install`` line that fixes it (raised by :func:`routellm_integrations.extras.require`)."""


class MissingEmbedderExtraError(MissingExtraError, EmbedderError):
    """An embedder whose extra is not installed: a :class:`MissingExtraError` that code
    catching :class:`EmbedderError` (an embedder that could not be loaded) still catches."""


class InvalidStateError(RouteLLMError, ValueError):
    """Routing state read back from a store (or a checkpoint) that fails validation."""


class InvalidStoreURL(RouteLLMError, ValueError):
    """A state store URL this package cannot open."""


class StoreUnavailableError(RouteLLMError, RuntimeError):
    """A state store (SQLite, Redis) that cannot be reached in time: it did not accept the
    connection, did not answer within its timeout, or stayed locked past its busy timeout.
    The message names the store by its URL with any password removed; ``store`` holds that
    URL. Nothing was decided on stale numbers: the call that needed the store did not run
    (a settlement that could not be written went to the write-ahead file instead, see
    :mod:`routellm_integrations.state.wal`). An HTTP server answers it with 503."""

    def __init__(self, message: str, store: str | None = None) -> None:
        super().__init__(message)
        self.store = store


class StoreResetError(StoreUnavailableError):
    """A state store that came back empty: the marker written when it was first set up is
    gone (Redis restarted without persistence, a ``FLUSHALL``, a SQLite file replaced), so
    its budgets would silently start from zero. Budget admission and settlement refuse
    until an operator acknowledges with ``store.acknowledge_reset()`` (settlements are kept
    in the write-ahead file meanwhile and replayed after). A :class:`StoreUnavailableError`,
    so a server answers it with 503 too."""


class RouterOptionError(RouteLLMError, TypeError):
    """``load_router(name, **options)`` got an option the router does not take (a typo such
    as ``strong_modle=`` would otherwise be a raw ``TypeError`` from deep inside)."""


class UnknownEmbedderError(EmbedderError, KeyError):
    """``get_embedder`` was given a name it does not know; the message lists valid names."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class InvalidEmbedderError(UnknownEmbedderError, TypeError):
    """``get_embedder`` was given something that is not an embedder name (``None``, a number,
    an object); the message says what it got and lists the valid names."""


class InvalidScoreError(RouteLLMError, ValueError):
    """A router's ``_score`` returned something that is not one finite number in [0, 1] per
    prompt (NaN, inf, out of range, the wrong shape, not numeric). Raised by
    ``BaseRouter.score``; the message names the router."""


class UnknownSourceError(DataError, KeyError):
    """A training source name that no parser handles. The message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class TrainingOptionError(DataError):
    """An argument of ``training.pipeline.train`` (or a trainer's config field) that is out of
    range, of the wrong type, or unknown; raised before any data is read. The message names
    the argument."""


class JudgeVerdictError(RouteLLMError):
    """Most of a labelling run's judgments held no readable verdict (no ``[[A]]``, ``[[B]]``
    or ``[[C]]``): the judge does not follow the format. Nothing unreadable was stored as a
    label. The message gives the count and one (truncated) example; ``report`` holds the
    run's :class:`~routellm_integrations.labels.LabellingReport`."""

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class UnsafeSchemaError(RouteLLMError, ValueError):
    """A JSON schema that an escalation check would validate answers against cannot be
    validated in bounded time: a ``pattern`` open to catastrophic backtracking (nested
    quantifiers, alternation inside a quantifier, a backreference), a pattern, depth or
    size over the limits of :mod:`routellm_integrations.routing.escalation`. Raised before
    any validation; the message names the problem and where it is. Client input: a
    server answers it with 400."""
