"""Re-score a traffic log with a router: one ``{"row", "id"?, "score", "route"}`` line per row.

Used to measure a new router's strong share on real traffic, or to find the threshold
that gives a target share, without holding the log in memory: rows stream through
:func:`~routellm_integrations.scale.engines.map_log` and only the scores (8 bytes a row)
are kept, because a target share needs all of them before any route is known. With
``strong_fraction`` the file is therefore written in two passes (scores, then routes);
with a fixed threshold in one. ``out`` appears only when complete (written to
``out.part`` and renamed), so a failed run never leaves a half file that looks whole.
"""

from __future__ import annotations

import json
import os
import time
from array import array
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from pydantic import BaseModel, ConfigDict

from ..calibration import strong_share, threshold_for_strong_fraction
from ..errors import DataError, InvalidThresholdError
from ..routers.base import validate_threshold
from .engines import BatchFn, Engine, Row, map_log

DEFAULT_THRESHOLD = 0.5


class RescoreSummary(BaseModel):
    """What a re-scoring run found; ``strong_share`` is the share routed strong at ``threshold``."""

    model_config = ConfigDict(frozen=True)

    n_prompts: int
    strong_share: float
    threshold: float
    #: the target share the threshold was calibrated for, or None for a given threshold
    strong_fraction: float | None
    #: the router as given: a registered name or a checkpoint folder
    router: str
    engine: Engine
    seconds: float
    out: str

    @property
    def prompts_per_second(self) -> float:
        return self.n_prompts / self.seconds if self.seconds > 0 else float("inf")


class RouterScorer:
    """A picklable factory of a batch scorer: ships the router's name or folder, and loads
    the router where it is called (once per worker), since a loaded router does not pickle."""

    def __init__(self, router: str, options: Mapping[str, Any] | None = None) -> None:
        self.router = router
        self.options = dict(options or {})

    def __call__(self) -> BatchFn:
        from ..routers import load_router

        router = load_router(self.router, **self.options)

        def score(rows: list[Row]) -> list[Row]:
            scores = router.score([r["prompt"] for r in rows])
            return [{"id": r["id"], "score": float(s)} if "id" in r else {"score": float(s)}
                    for r, s in zip(rows, scores)]

        return score


def _router_spec(router: str | os.PathLike[str]) -> str:
    """A registered name as is, a folder as an absolute path (workers may run elsewhere);
    anything else fails here, before a cluster starts or a line is read."""
    from ..routers import available_routers, load_router

    if isinstance(router, str) and router in available_routers():
        return router
    if Path(router).is_dir():
        return str(Path(router).resolve())
    load_router(router)  # raises UnknownRouterError naming the known routers
    return os.fspath(router)


def rescore_log(router: str | os.PathLike[str], log: str | os.PathLike[str], out: str | os.PathLike[str], *,
                engine: Engine = "local", threshold: float | None = None, strong_fraction: float | None = None,
                batch_size: int = 256, num_workers: int | None = None, progress: bool = True,
                router_options: Mapping[str, Any] | None = None) -> RescoreSummary:
    """Score every row's ``prompt`` in ``log`` (JSONL or CSV) and write ``out`` (JSONL).

    Routes are ``"strong"`` when ``score >= threshold``. The threshold is ``threshold``,
    or the one that sends ``strong_fraction`` of this log strong, or 0.5. ``router`` is
    loaded once per worker by :func:`~routellm_integrations.routers.load_router` with
    ``router_options`` (e.g. ``strong_model=``); an input ``id`` field is copied through.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    if threshold is not None and strong_fraction is not None:
        raise InvalidThresholdError("give threshold or strong_fraction, not both")
    fixed = None if strong_fraction is not None else validate_threshold(
        DEFAULT_THRESHOLD if threshold is None else threshold)
    target = None if strong_fraction is None else validate_threshold(strong_fraction, "strong_fraction")
    spec = _router_spec(router)
    out_path = Path(out)
    outputs = map_log(log, RouterScorer(spec, router_options), engine=engine, batch_size=batch_size,
                      num_workers=num_workers)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    part = out_path.with_name(out_path.name + ".part")
    scores_part = out_path.with_name(out_path.name + ".scores.part")
    scores = array("d")
    try:
        first = part if fixed is not None else scores_part
        with first.open("w", encoding="utf-8") as fh, \
                tqdm(desc=f"rescore {Path(log).name}", unit="prompt", disable=not progress, leave=False) as bar:
            for i, r in enumerate(outputs):
                s = r["score"]
                scores.append(s)
                rec: Row = {"row": i, "id": r["id"]} if "id" in r else {"row": i}
                rec["score"] = s
                if fixed is not None:
                    rec["route"] = "strong" if s >= fixed else "weak"
                fh.write(json.dumps(rec) + "\n")
                if i % 1024 == 1023:
                    bar.update(1024)
            bar.update(len(scores) % 1024)
        if not scores:
            raise DataError(f"{log}: the log has no rows to score")
        values = np.frombuffer(scores, dtype=np.float64)
        t = fixed if fixed is not None else threshold_for_strong_fraction(values, target)
        if fixed is None:
            _add_routes(scores_part, part, t)
        os.replace(part, out_path)
    finally:
        for leftover in (part, scores_part):
            leftover.unlink(missing_ok=True)
    return RescoreSummary(n_prompts=len(scores), strong_share=strong_share(values, t), threshold=t,
                          strong_fraction=target, router=os.fspath(router), engine=engine,
                          seconds=time.perf_counter() - start, out=str(out_path))


def _add_routes(src: Path, dst: Path, threshold: float) -> None:
    """The second pass: the same lines with their route, once the threshold is known."""
    with src.open(encoding="utf-8") as fin, dst.open("w", encoding="utf-8") as fout:
        for line in fin:
            rec = json.loads(line)
            rec["route"] = "strong" if rec["score"] >= threshold else "weak"
            fout.write(json.dumps(rec) + "\n")
