"""Routing state (budgets, the cost ledger, the online share) in a store that can outlive
the process and be shared: :func:`open_store` takes ``memory://``, ``sqlite:///path`` or
``redis://host:6379/0``."""

from __future__ import annotations

from ..errors import InvalidStoreURL
from .base import DEFAULT_LEASE_S, LedgerEntry, Reservation, StateStore, UsageQuery, UsageReport, UsageTotals
from .ledger import CostLedger
from .memory import MemoryStore
from .stores import open_store
from .tracker import BudgetTracker

__all__ = ["BudgetTracker", "CostLedger", "DEFAULT_LEASE_S", "InvalidStoreURL", "LedgerEntry", "MemoryStore", "Reservation",
           "StateStore", "UsageQuery", "UsageReport", "UsageTotals", "open_store"]
