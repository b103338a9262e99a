"""Map a batch function over a large log, in input order, locally or on Ray Data.

A log is JSONL (one JSON object per line: ``.jsonl``, ``.ndjson``, ``.json``) or CSV
(``.csv``, a header row). The function is built by a zero-argument factory *once per
worker*, because what it holds (a router with an ONNX session) is slow to build and does
not pickle, while the factory (a router name) does.

Both engines read with the same rules, so they yield the same rows in the same order:

- JSONL is split on the byte ``\\n`` only. A raw newline cannot occur inside a JSON
  string, so this is exact, and it lets Ray split one big file at byte offsets
  (``str.splitlines`` would also split on U+2028, which JSON may hold raw). Blank lines
  are skipped; a UTF-8 BOM before the first line is ignored.
- CSV keeps every field a string (an ``id`` of ``007`` stays ``"007"``) and skips
  empty lines; a record with more or fewer fields than the header is an error.
- Every row must hold a non-blank string in ``text_field`` (default ``"prompt"``).

Rows are numbered from 0 over data rows (blank lines not counted), as the outputs are;
a :class:`~routellm_integrations.errors.DataError` names the file and that row (and for
JSONL the 1-based line). Outputs before a bad row are yielded before it is raised.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Literal

from ..errors import DataError
from ..extras import install_line, require

if TYPE_CHECKING:
    import pyarrow

Row = dict[str, Any]
BatchFn = Callable[[list[Row]], list[Row]]
Engine = Literal["local", "ray"]
ENGINES: tuple[str, ...] = ("local", "ray")

#: a JSONL log is cut into byte ranges of about this size for Ray (at least 4 per worker),
#: so a worker holds one range, not the file, and one big file still spreads over workers
RANGE_BYTES = 8 << 20
#: settings a worker on another node must see as the driver does (offline hubs, caches)
FORWARDED_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HOME",
                 "TOKENIZERS_PARALLELISM", "ROUTELLM_DATA_DIR", "ROUTELLM_CACHE_DIR")
RAY_EXTRA_HINT = install_line("ray")

_BOM = b"\xef\xbb\xbf"
_OK, _BLANK, _BAD = 0, 1, 2


@dataclass(frozen=True)
class LogFile:
    """A checked log: it exists, its format is known, a CSV header has ``text_field``."""

    path: Path
    kind: Literal["jsonl", "csv"]
    text_field: str | None
    header: tuple[str, ...] = ()

    def where(self, row: int, line: int | None = None) -> str:
        return f"{self.path}: line {line} (row {row})" if line is not None else f"{self.path}: row {row}"


def open_log(path: str | os.PathLike[str], *, text_field: str | None = "prompt") -> LogFile:
    """Check a log before any work starts (a CSV's header is read here)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"log file {str(p)!r} not found")
    p = p.resolve()  # Ray workers need not share the driver's working directory
    suffix = p.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return LogFile(p, "jsonl", text_field)
    if suffix != ".csv":
        raise DataError(f"{p}: unknown log format {suffix or '(no suffix)'!r}: use .jsonl (one JSON object "
                        "per line) or .csv (a header row)")
    with p.open(encoding="utf-8-sig", newline="") as fh:
        header = next(_csv_records(p, fh), None)
    if header is None:
        raise DataError(f"{p}: the CSV log is empty (no header row)")
    if len(set(header)) != len(header):
        raise DataError(f"{p}: the CSV header repeats a column name: {header}")
    if text_field is not None and text_field not in header:
        raise DataError(f"{p}: the CSV header has no {text_field!r} column (columns: {header})")
    return LogFile(p, "csv", text_field, tuple(header))


def map_log(path: str | os.PathLike[str], make_fn: Callable[[], BatchFn], *, engine: Engine = "local",
            batch_size: int = 256, num_workers: int | None = None,
            text_field: str | None = "prompt") -> Iterator[Row]:
    """``make_fn()`` returns ``fn(rows) -> outputs`` (one output dict per row, same order);
    yields every output in the log's row order.

    ``engine="local"`` streams the file in batches of ``batch_size`` rows (memory does not
    grow with the log). ``engine="ray"`` runs ``num_workers`` Ray Data actors (default: the
    cluster's CPUs), each building ``fn`` once; there, outputs must be JSON-serialisable
    (they travel as JSON text so Arrow never retypes them) and the log must be readable
    at the same path on every node. Ray is started (locally) if it is not running.
    Argument errors are raised here; read errors when iterating.
    """
    if engine not in ENGINES:
        raise DataError(f"unknown engine {engine!r}: use one of {list(ENGINES)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
    if num_workers is not None and (isinstance(num_workers, bool) or not isinstance(num_workers, int)
                                    or num_workers < 1):
        raise DataError(f"num_workers must be a positive integer or None, got {num_workers!r}")
    log = open_log(path, text_field=text_field)
    if engine == "local":
        return _map_local(log, make_fn, batch_size)
    return _map_ray(log, make_fn, batch_size, num_workers)


# --- parsing shared by both engines ---------------------------------------------------

def _row_problem(row: Any, text_field: str | None) -> str | None:
    if not isinstance(row, dict):
        return f"is a JSON {type(row).__name__}, not an object"
    if text_field is None:
        return None
    if text_field not in row:
        return f"has no {text_field!r} field"
    value = row[text_field]
    if not isinstance(value, str):
        return f"{text_field!r} is a {type(value).__name__}, not a string"
    if not value.strip():
        return f"{text_field!r} is empty"
    return None


def _parse_jsonl(raw: bytes, text_field: str | None, *, first: bool) -> tuple[Row | None, str | None]:
    """``(row, None)``, ``(None, problem)``, or ``(None, None)`` for a blank line."""
    if first and raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    if not text.strip():
        return None, None
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"is not valid JSON ({exc.msg})"
    problem = _row_problem(row, text_field)
    return (None, problem) if problem else (row, None)


def _csv_records(path: Path, fh: Iterable[str]) -> Iterator[list[str]]:
    try:
        yield from (r for r in csv.reader(fh) if r)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV log ({exc})") from None


def _checked(fn: BatchFn, rows: list[Row]) -> list[Row]:
    out = fn(rows)
    if not isinstance(out, list) or len(out) != len(rows):
        got = len(out) if isinstance(out, list) else type(out).__name__
        raise TypeError(f"the batch function must return a list with one dict per row: got {got} for {len(rows)}")
    return out


# --- local engine ---------------------------------------------------------------------

def _local_records(log: LogFile) -> Iterator[tuple[int | None, Row | None, str | None]]:
    """``(line, row, problem)`` per data row, blank lines dropped."""
    if log.kind == "jsonl":
        with log.path.open("rb") as fh:
            for line, raw in enumerate(fh, start=1):
                row, problem = _parse_jsonl(raw, log.text_field, first=line == 1)
                if row is not None or problem is not None:
                    yield line, row, problem
        return
    with log.path.open(encoding="utf-8-sig", newline="") as fh:
        records = _csv_records(log.path, fh)
        next(records)  # the header, checked by open_log
        for record in records:
            if len(record) != len(log.header):
                yield None, None, f"has {len(record)} fields, the header has {len(log.header)}"
                continue
            row = dict(zip(log.header, record))
            problem = _row_problem(row, log.text_field)
            yield (None, None, problem) if problem else (None, row, None)


def _map_local(log: LogFile, make_fn: Callable[[], BatchFn], batch_size: int) -> Iterator[Row]:
    fn = make_fn()
    pending: list[Row] = []
    for index, (line, row, problem) in enumerate(_local_records(log)):
        if row is None:
            if pending:
                yield from _checked(fn, pending)
            raise DataError(f"{log.where(index, line)}: {problem}")
        pending.append(row)
        if len(pending) >= batch_size:
            yield from _checked(fn, pending)
            pending = []
    if pending:
        yield from _checked(fn, pending)


# --- Ray engine -----------------------------------------------------------------------
#
# Why not ``ray.data.read_json`` / ``read_text`` for JSONL: in Ray 2.4x-2.6x both read a
# whole file into one task's memory (``read_buffer()`` / ``readall()``), and read_json lets
# Arrow infer types (ids retyped, mixed-type fields rejected). ``from_items`` over the rows
# would put the whole log in the driver. Instead the driver computes byte ranges that end
# at newlines (a seek per range, no scan) and ``from_items`` carries only those; each actor
# reads and parses its own range with the local engine's rules. CSV cannot be cut at byte
# offsets (quoted fields may hold newlines), so it goes through ``read_csv``, which streams
# the file in blocks, with every column typed as a string.

def _import_ray() -> Any:
    ray, _ = require("ray", "ray.data", extra="ray", feature='engine="ray" (Ray Data)')  # ray.data: the [data] part
    return ray


def ensure_ray(num_workers: int | None = None) -> Any:
    """The ``ray`` module, with a local Ray started if none is running (no dashboard, no
    usage-stats upload, worker logs kept out of the driver's output)."""
    ray = _import_ray()
    if not ray.is_initialized():
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=num_workers or None, include_dashboard=False, log_to_driver=False)
    return ray


def byte_ranges(path: Path, n_ranges: int) -> list[tuple[int, int]]:
    """About ``n_ranges`` ``(start, end)`` byte ranges covering the file, each starting at
    a line start (a line longer than a range merges ranges, never splits the line)."""
    size = path.stat().st_size
    if size == 0:
        return []
    step = max(1, math.ceil(size / max(1, n_ranges)))
    bounds = {0, size}
    with path.open("rb") as fh:
        for cut in range(step, size, step):
            fh.seek(cut - 1)
            fh.readline()  # to just past the newline ending the line that holds byte cut-1
            bounds.add(min(fh.tell(), size))
    edges = sorted(bounds)
    return list(zip(edges[:-1], edges[1:]))


def _read_range(path: Path, start: int, end: int) -> list[bytes]:
    with path.open("rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines.pop()
    return lines


class _RayWorker:
    """One Ray Data actor: builds ``fn`` once, then maps batches of JSONL ranges or CSV
    rows to ``status``/``payload`` columns aligned with the input lines/rows."""

    def __init__(self, make_fn: Callable[[], BatchFn], env: dict[str, str], log: LogFile, batch_size: int) -> None:
        os.environ.update(env)
        self._fn = make_fn()
        self._log = log
        self._batch_size = batch_size

    def __call__(self, batch: pyarrow.Table) -> pyarrow.Table:
        import pyarrow as pa

        log = self._log
        if log.kind == "jsonl":
            parsed = [_parse_jsonl(raw, log.text_field, first=r["start"] == 0 and i == 0)
                      for r in batch.to_pylist()
                      for i, raw in enumerate(_read_range(log.path, r["start"], r["end"]))]
        else:
            parsed = [(None, p) if (p := _row_problem(row, log.text_field)) else (row, None)
                      for row in batch.to_pylist()]
        status = [_OK if row is not None else _BAD if problem else _BLANK for row, problem in parsed]
        payload = [problem or "" for _, problem in parsed]
        good = [i for i, s in enumerate(status) if s == _OK]
        for s in range(0, len(good), self._batch_size):
            idx = good[s:s + self._batch_size]
            for i, out in zip(idx, _checked(self._fn, [parsed[i][0] for i in idx])):
                payload[i] = json.dumps(out)
        return pa.table({"status": pa.array(status, pa.int8()), "payload": pa.array(payload, pa.large_string())})


def _map_ray(log: LogFile, make_fn: Callable[[], BatchFn], batch_size: int,
             num_workers: int | None) -> Iterator[Row]:
    ray = ensure_ray(num_workers)
    from ray.data import ActorPoolStrategy, DataContext

    workers = num_workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    if log.kind == "jsonl":
        size = log.path.stat().st_size
        ranges = byte_ranges(log.path, max(4 * workers, math.ceil(size / RANGE_BYTES)))
        if not ranges:
            return iter(())
    # Datasets copy the current DataContext when created: set order preservation (exact
    # output order across actors) and quiet bars there, then give the caller theirs back.
    ctx = DataContext.get_current()
    saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars)
    ctx.execution_options.preserve_order, ctx.enable_progress_bars = True, False
    try:
        if log.kind == "jsonl":
            ds = ray.data.from_items([{"start": s, "end": e} for s, e in ranges], override_num_blocks=len(ranges))
            per_call = 1
        else:
            import pyarrow as pa
            from pyarrow import csv as pacsv

            # the read holds no CPU: the actors may hold them all, and a read queued behind
            # them would wait for ever (it is one light task streaming one file)
            ds = ray.data.read_csv(
                str(log.path), num_cpus=0, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in log.header},
                                                     strings_can_be_null=False))
            per_call = batch_size
        ds = ds.map_batches(_RayWorker, fn_constructor_args=(make_fn, _forwarded_env(), log, batch_size),
                            batch_size=per_call, batch_format="pyarrow", compute=ActorPoolStrategy(size=workers))
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
    return _drain(ds, log)


def _forwarded_env() -> dict[str, str]:
    return {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}


def _drain(ds: Any, log: LogFile) -> Iterator[Row]:
    row, line = 0, 0
    try:
        for table in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            for status, payload in zip(table.column("status").to_pylist(), table.column("payload").to_pylist()):
                line += 1
                if status == _BLANK:
                    continue
                if status == _BAD:
                    raise DataError(f"{log.where(row, line if log.kind == 'jsonl' else None)}: {payload}")
                yield json.loads(payload)
                row += 1
    except DataError:
        raise
    except Exception as exc:
        if log.kind == "csv" and "Failed to read CSV file" in str(exc):
            cause = _root_cause(exc)
            raise DataError(f"{log.path}: not a well-formed CSV log ({cause})") from exc
        raise


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
