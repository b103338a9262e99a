"""Reading the data files every loader shares, with errors that name file and line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import DataError


def read_jsonl(path: Path) -> list[Any]:
    """One JSON value per non-blank line; :class:`DataError` for a missing file or bad line."""
    if not path.is_file():
        raise DataError(f"file {str(path)!r} not found")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}: line {i} is not valid JSON ({exc.msg})") from None
    return rows
