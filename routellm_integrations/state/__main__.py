"""Operator commands for a state store (issue 25)::

    python -m routellm_integrations.state ping URL              # exit 0 ready, 3 unavailable, 4 reset
    python -m routellm_integrations.state acknowledge-reset URL # accept a store that came back empty
    python -m routellm_integrations.state replay URL            # replay this host's write-ahead file now
    python -m routellm_integrations.state reclaim URL           # free dead local processes' reservations (SQLite)

``URL`` as ``open_store`` takes it (``sqlite:///path``, ``redis://host:port/db?prefix=name``).
Messages name the store by its URL without a password. Set ``$ROUTELLM_WAL`` as the server
does, so the write-ahead file and the remembered epoch are the server's.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import RouteLLMError, StoreResetError, StoreUnavailableError
from . import wal
from .stores import open_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m routellm_integrations.state", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["ping", "acknowledge-reset", "replay", "reclaim"])
    parser.add_argument("url")
    args = parser.parse_args(argv)
    try:
        store = open_store(args.url)
        if args.command == "ping":
            store.ping()
            print(f"{store.url}: ready ({wal.pending(store)} write-ahead lines pending)")
        elif args.command == "acknowledge-reset":
            epoch = store.acknowledge_reset()
            print(f"{store.url}: reset acknowledged (epoch {epoch}); budgets count from what the store holds now")
        elif args.command == "replay":
            print(f"{store.url}: replayed {wal.replay(store)} write-ahead lines, {wal.pending(store)} left")
        else:
            reclaim = getattr(store, "reclaim_dead", None)
            n = reclaim() if reclaim is not None else 0
            print(f"{store.url}: reclaimed {n} reservations of dead processes")
    except StoreResetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 4
    except StoreUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except RouteLLMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
