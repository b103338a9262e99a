"""The local label store: every label a deployment gathers, in one SQLite file.

Why SQLite: labels trickle in from several places at once (judge labelling, shadow
samples of live traffic, user feedback), from threads and processes, and must survive a
crash; sqlite in WAL mode gives that with the standard library and a file the user can
inspect. ``routellm adapt --from-store PATH`` reads it back as a :class:`LabelSet`.

Tables:

- ``prompts``: one row per prompt (sha256 key). The text, or in privacy mode only its
  embedding and structural features (``record="embedding"``), never both missing.
- ``labels``: outcomes or battle verdicts of a strong/weak pair on a prompt, with their
  source (``judge:<model>``, ``shadow:<model>``, ``file:<name>``) and, where the label
  came from comparing answers (judge labelling, shadow sampling), both answers: the
  weak one is what ``routellm adapt`` fits the answer verifier on. In privacy mode
  (``record="embedding"``) no answer text is kept either.
- ``calls`` and ``feedback``: calls that were made (``call_id`` from the routing
  metadata) and scores users attached to them.
- ``work``: results already paid for (backend answers, judge verdicts), so a labelling
  run that crashed resumes without paying for anything twice.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

import numpy as np

from ..errors import DataError, RouteLLMError
from ..sqlite_wal import enter_wal
from ..validation import scrub_surrogates
from .labelset import LabelSet, aggregate

Verdict = Literal["strong", "weak", "tie"]
RecordMode = Literal["text", "embedding"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS prompts (
    key       BLOB PRIMARY KEY,
    text      TEXT,
    embedder  TEXT,
    embedding BLOB,
    features  TEXT,
    created   REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS labels (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    key          BLOB NOT NULL REFERENCES prompts(key),
    strong_model TEXT NOT NULL,
    weak_model   TEXT NOT NULL,
    strong       REAL NOT NULL,
    weak         REAL NOT NULL,
    source       TEXT NOT NULL,
    call_id      TEXT,
    created      REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS labels_pair ON labels(strong_model, weak_model);
-- answer columns: added by _migrate to stores written before they existed
CREATE TABLE IF NOT EXISTS calls (
    call_id      TEXT PRIMARY KEY,
    key          BLOB NOT NULL REFERENCES prompts(key),
    route        TEXT NOT NULL,
    model        TEXT,
    strong_model TEXT NOT NULL,
    weak_model   TEXT NOT NULL,
    created      REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    call_id TEXT PRIMARY KEY REFERENCES calls(call_id),
    score   REAL NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS work (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL,
    created REAL NOT NULL
);
"""

#: the labels table's answer columns (kept only with record="text")
ANSWER_COLUMNS: tuple[str, ...] = ("strong_answer", "weak_answer")

_VERDICT_OUTCOMES: dict[str, tuple[float, float]] = {"strong": (1.0, 0.0), "weak": (0.0, 1.0), "tie": (0.5, 0.5)}


class UnknownCallError(RouteLLMError, KeyError):
    """Feedback named a ``call_id`` the store never recorded (record calls with
    ``record_calls=`` on the chat model, or :meth:`LabelStore.record_call`)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def prompt_key(text: str) -> bytes:
    """The key of a prompt's row; a lone surrogate counts as the U+FFFD the row stores."""
    return hashlib.sha256(scrub_surrogates(text).encode("utf-8")).digest()


def work_key(*parts: str) -> str:
    """A stable key for one paid step (e.g. ``("answer", model, prompt)``)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(f"{what} must be a number, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise DataError(f"{what} must be finite, got {out}")
    return out


class LabelStore:
    """Thread-safe; one connection guarded by a lock (writes are small and rare)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise DataError(f"label store {str(self.path)!r} is a folder; give a file path (e.g. labels.sqlite)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30.0)
            enter_wal(self._db, 30.0)
            self._db.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise DataError(f"{self.path} is not a label store (sqlite): {exc}") from exc

    def _migrate(self) -> None:
        """Add the answer columns to a store written before they existed (its labels keep
        NULL answers: the verifier learns from the labels that have them)."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(labels)")}
        with self._db:
            for column in ANSWER_COLUMNS:
                if column not in have:
                    self._db.execute(f"ALTER TABLE labels ADD COLUMN {column} TEXT")

    def __repr__(self) -> str:
        return f"LabelStore({str(self.path)!r})"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "LabelStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- prompts -----------------------------------------------------------------------
    def _put_prompt(self, text: str, record: RecordMode, embedding: np.ndarray | None,
                    embedder: str | None) -> bytes:
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"a labelled prompt must be non-empty text, got {text!r}")
        if record not in ("text", "embedding"):
            raise DataError(f"record must be 'text' or 'embedding', got {record!r}")
        text = scrub_surrogates(text)  # SQLite stores UTF-8: a lone surrogate cannot be written
        key = prompt_key(text)
        blob = feats = None
        if record == "embedding":
            if embedding is None or embedder is None:
                raise DataError("record='embedding' needs the prompt's embedding and the embedder's name")
            vec = np.asarray(embedding, dtype=np.float32).reshape(-1)
            if not np.isfinite(vec).all():
                raise DataError("the prompt's embedding holds non-finite values")
            from ..routers.features import FEATURES, structural_features

            blob = vec.tobytes()
            feats = json.dumps(dict(zip(FEATURES, map(float, structural_features([text])[0]))))
        stored_text = text if record == "text" else None
        self._db.execute(
            "INSERT INTO prompts(key, text, embedder, embedding, features, created) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT(key) DO UPDATE SET text=COALESCE(prompts.text, excluded.text), "
            "embedder=COALESCE(prompts.embedder, excluded.embedder), "
            "embedding=COALESCE(prompts.embedding, excluded.embedding), "
            "features=COALESCE(prompts.features, excluded.features)",
            (key, stored_text, embedder if blob is not None else None, blob, feats, time.time()))
        return key

    # -- labels ------------------------------------------------------------------------
    def add_outcome(self, prompt: str, strong: float, weak: float, *, strong_model: str, weak_model: str,
                    source: str, call_id: str | None = None, record: RecordMode = "text",
                    embedding: np.ndarray | None = None, embedder: str | None = None,
                    done: tuple[str, dict[str, Any]] | None = None, strong_answer: str | None = None,
                    weak_answer: str | None = None) -> None:
        """What each model scored on ``prompt`` (any numeric scale, one scale per pair).
        ``done=(work_key, value)`` marks the paid work finished in the same transaction, so
        a crash can neither keep the label without the mark nor the mark without it.
        ``strong_answer``/``weak_answer``: the answers the label compared, kept with the
        label when the prompt's text is (``record="text"``), dropped in privacy mode."""
        s, w = _finite(strong, "strong outcome"), _finite(weak, "weak outcome")
        if not source:
            raise DataError("a label needs a source (e.g. 'judge:gpt-4o')")
        for name, value in (("strong_answer", strong_answer), ("weak_answer", weak_answer)):
            if value is not None and not isinstance(value, str):
                raise DataError(f"{name} must be text or None, got {type(value).__name__}")
        if record != "text":
            strong_answer = weak_answer = None
        answers = tuple(None if a is None else scrub_surrogates(a) for a in (strong_answer, weak_answer))
        with self._lock, self._db:
            key = self._put_prompt(prompt, record, embedding, embedder)
            self._db.execute("INSERT INTO labels(key, strong_model, weak_model, strong, weak, source, call_id, "
                             "created, strong_answer, weak_answer) VALUES (?,?,?,?,?,?,?,?,?,?)",
                             (key, strong_model, weak_model, s, w, source, call_id, time.time(), *answers))
            if done is not None:
                self._db.execute("INSERT OR REPLACE INTO work(key, value, created) VALUES (?,?,?)",
                                 (done[0], json.dumps(done[1]), time.time()))

    def add_verdict(self, prompt: str, verdict: Verdict, *, strong_model: str, weak_model: str, source: str,
                    call_id: str | None = None, record: RecordMode = "text",
                    embedding: np.ndarray | None = None, embedder: str | None = None,
                    done: tuple[str, dict[str, Any]] | None = None, strong_answer: str | None = None,
                    weak_answer: str | None = None) -> None:
        """A judge's pairwise verdict: the strong answer was better, the weak one, or a tie
        (with the two answers it compared, see :meth:`add_outcome`)."""
        if verdict is None:
            raise DataError("no verdict to store: the judge's answer held none (an unreadable judgment is not a "
                            "tie, and not a label)")
        if verdict not in _VERDICT_OUTCOMES:
            raise DataError(f"verdict must be 'strong', 'weak' or 'tie', got {verdict!r}")
        s, w = _VERDICT_OUTCOMES[verdict]
        self.add_outcome(prompt, s, w, strong_model=strong_model, weak_model=weak_model, source=source,
                         call_id=call_id, record=record, embedding=embedding, embedder=embedder, done=done,
                         strong_answer=strong_answer, weak_answer=weak_answer)

    def pairs(self) -> list[tuple[str, str, int]]:
        """``(strong_model, weak_model, n_labels)`` for every pair with labels or feedback."""
        with self._lock:
            rows = self._db.execute("SELECT strong_model, weak_model, COUNT(*) FROM labels GROUP BY 1, 2").fetchall()
            fb = self._db.execute("SELECT c.strong_model, c.weak_model, COUNT(*) FROM feedback f JOIN calls c "
                                  "USING(call_id) GROUP BY 1, 2").fetchall()
        counts: dict[tuple[str, str], int] = {}
        for s, w, n in [*rows, *fb]:
            counts[(s, w)] = counts.get((s, w), 0) + int(n)
        return [(s, w, n) for (s, w), n in sorted(counts.items())]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM labels").fetchone()[0])

    # -- calls and feedback ------------------------------------------------------------
    def record_call(self, call_id: str, prompt: str, *, route: str, model: str | None, strong_model: str,
                    weak_model: str, record: RecordMode = "text", embedding: np.ndarray | None = None,
                    embedder: str | None = None) -> None:
        """Remember a routed call so feedback on it can become a label later."""
        if not isinstance(call_id, str) or not call_id:
            raise DataError(f"call_id must be a non-empty string, got {call_id!r}")
        if route not in ("strong", "weak"):
            raise DataError(f"route must be 'strong' or 'weak', got {route!r}")
        with self._lock, self._db:
            key = self._put_prompt(prompt, record, embedding, embedder)
            self._db.execute("INSERT OR REPLACE INTO calls(call_id, key, route, model, strong_model, weak_model, "
                             "created) VALUES (?,?,?,?,?,?,?)",
                             (call_id, key, route, model, strong_model, weak_model, time.time()))

    def add_feedback(self, call_id: str, score: float) -> None:
        """A score in [0, 1] for the answer a recorded call gave (1 = as good as it gets).
        A second score for the same call replaces the first."""
        value = _finite(score, "feedback score")
        if not 0.0 <= value <= 1.0:
            raise DataError(f"feedback score must be in [0, 1] (1 = best), got {value}")
        with self._lock, self._db:
            if self._db.execute("SELECT 1 FROM calls WHERE call_id=?", (call_id,)).fetchone() is None:
                raise UnknownCallError(f"no recorded call has call_id {call_id!r}; calls are recorded when the "
                                       "chat model is given a store (record_calls=) or via record_call()")
            self._db.execute("INSERT OR REPLACE INTO feedback(call_id, score, created) VALUES (?,?,?)",
                             (call_id, value, time.time()))

    # -- paid work (resuming) ----------------------------------------------------------
    def get_work(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM work WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_work(self, key: str, value: dict[str, Any]) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO work(key, value, created) VALUES (?,?,?)",
                             (key, json.dumps(value), time.time()))

    # -- reading back ------------------------------------------------------------------
    def _rows(self, sql: str, args: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
        with self._lock:
            yield from self._db.execute(sql, args).fetchall()

    def label_set(self, *, strong_model: str | None = None, weak_model: str | None = None,
                  feedback: bool = True) -> LabelSet:
        """The store's labels of one pair (the only pair when there is one), one row per
        prompt. Feedback observes one side of a call; the other side is taken as the mean
        feedback that model received (0.5 when it received none), so a weak answer scored
        below the strong model's usual score reads as "strong would have done better"."""
        pairs = self.pairs()
        if not pairs:
            raise DataError(f"label store {str(self.path)!r} holds no labels yet")
        if strong_model is None or weak_model is None:
            if len(pairs) > 1 and (strong_model is None and weak_model is None):
                raise DataError(f"label store holds several pairs {[(s, w) for s, w, _ in pairs]}; "
                                "pass strong_model= and weak_model=")
            match = [p for p in pairs if (strong_model in (None, p[0])) and (weak_model in (None, p[1]))]
            if len(match) != 1:
                raise DataError(f"no single pair in the store matches strong={strong_model!r} weak={weak_model!r}: "
                                f"{[(s, w) for s, w, _ in pairs]}")
            strong_model, weak_model = match[0][0], match[0][1]
        rows = list(self._rows(
            "SELECT p.text, p.embedder, p.embedding, p.features, l.strong, l.weak, l.source, l.strong_answer, "
            "l.weak_answer FROM labels l "
            "JOIN prompts p USING(key) WHERE l.strong_model=? AND l.weak_model=? ORDER BY l.id",
            (strong_model, weak_model)))
        if feedback:
            rows.extend(self._feedback_rows(strong_model, weak_model))
        if not rows:
            raise DataError(f"label store holds no labels for strong={strong_model!r} weak={weak_model!r}")
        return _label_set_from_rows(rows, strong_model, weak_model)

    def _feedback_rows(self, strong_model: str, weak_model: str) -> list[tuple[Any, ...]]:
        fb = list(self._rows(
            "SELECT p.text, p.embedder, p.embedding, p.features, c.route, f.score FROM feedback f "
            "JOIN calls c USING(call_id) JOIN prompts p ON p.key = c.key "
            "WHERE c.strong_model=? AND c.weak_model=? ORDER BY f.created", (strong_model, weak_model)))
        by_route: dict[str, list[float]] = {"strong": [], "weak": []}
        for *_, route, score in fb:
            by_route[route].append(float(score))
        mean = {r: (float(np.mean(v)) if v else 0.5) for r, v in by_route.items()}
        out = []
        for text, embedder, emb, feats, route, score in fb:
            s, w = (score, mean["weak"]) if route == "strong" else (mean["strong"], score)
            out.append((text, embedder, emb, feats, s, w, "feedback", None, None))
        return out


def _label_set_from_rows(rows: list[tuple[Any, ...]], strong_model: str, weak_model: str) -> LabelSet:
    from ..routers.features import FEATURES

    prompts = [r[0] for r in rows]
    embedders = {r[1] for r in rows if r[0] is None}
    if len(embedders) > 1:
        raise DataError(f"recorded embeddings come from different embedders {sorted(map(str, embedders))}")
    emb = feats = None
    if any(p is None for p in prompts):
        # text-less rows carry their embedding; rows with text get theirs when adapted
        dim = next(len(r[2]) // 4 for r in rows if r[0] is None)
        emb = np.zeros((len(rows), dim), dtype=np.float32)
        feats = np.zeros((len(rows), len(FEATURES)), dtype=np.float32)
        for i, r in enumerate(rows):
            if r[2] is not None:
                emb[i] = np.frombuffer(r[2], dtype=np.float32)
                stored = json.loads(r[3])
                feats[i] = [stored[name] for name in FEATURES]
            elif r[0] is None:
                raise DataError("a stored prompt has neither text nor embedding")
    answered = any(r[8] is not None for r in rows)
    labels = LabelSet(tuple(prompts), np.array([r[4] for r in rows], dtype=np.float64),
                      np.array([r[5] for r in rows], dtype=np.float64), strong_model, weak_model, "score",
                      next(iter(embedders), None), emb, feats, tuple(sorted({r[6] for r in rows})),
                      tuple(r[8] for r in rows) if answered else None,
                      tuple(r[7] for r in rows) if answered else None)
    return aggregate(labels)
