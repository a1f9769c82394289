"""Pausing Python's cyclic garbage collector for bulk work (catch-up, import, compliance)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Bulk work allocates tens of objects per event and keeps many alive until it commits,
    freeing them without cycles. The collector walked them again and again (~10% of a
    catch-up's CPU at 10,000 events a batch; ~13% of a 5,000-row import; 6.4 s of the 9.2 s
    a compliance query over 10^6 events took to load its incidents): it is off inside
    and back as it was after, when it collects any cycle made meanwhile in its own time.
    (A catch-up also collects the young generation after each batch.)"""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
