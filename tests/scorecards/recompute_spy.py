"""A stand-in for the recompute service that records what observation and rule changes ask of it."""

from __future__ import annotations

import sys
import types
from importlib.machinery import ModuleSpec

from scorecards.services import observations

SPY_MODULE = "tests_recompute_spy"


def install_recompute_spy(monkeypatch) -> list[tuple[str, str]]:
    """(period, reason) for each recompute asked for; asked on commit, so capture on-commit callbacks."""
    calls: list[tuple[str, str]] = []
    module = types.ModuleType(SPY_MODULE)
    module.__spec__ = ModuleSpec(SPY_MODULE, loader=None)
    module.schedule_recompute = lambda *, period, reason: calls.append((period, reason))
    monkeypatch.setitem(sys.modules, SPY_MODULE, module)
    monkeypatch.setattr(observations, "RECOMPUTE_MODULE", SPY_MODULE)
    return calls
