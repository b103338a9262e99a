"""Work over logs too large for memory: stream them locally, or spread them on Ray Data.

Ray is optional (the ``ray`` extra) and imported only when ``engine="ray"`` is asked for.
"""

from .engines import ENGINES, BatchFn, Engine, Row, map_log, open_log
from .rescore import RescoreSummary, RouterScorer, rescore_log

__all__ = ["ENGINES", "BatchFn", "Engine", "RescoreSummary", "RouterScorer", "Row", "map_log", "open_log",
           "rescore_log"]
