"""Pure service logic: no AWS, no I/O. Options and steps, patterns, summaries and the in-process chain.

What each stage does lives in its own module of `harmonic_service.stages`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harmonic_service.logic.options import Options, parse_options, resolve_steps

if TYPE_CHECKING:
    from harmonic_service.logic.chain import MemoryContext, run_chain

__all__ = ["MemoryContext", "Options", "parse_options", "resolve_steps", "run_chain"]


def __getattr__(name: str) -> Any:
    """The in-process chain on first use only: it imports the DSP (numpy, SciPy), which the routes and
    functions that never run a stage (status, patterns, the sweeper) should not pay for at cold start."""
    if name in ("MemoryContext", "run_chain"):
        from harmonic_service.logic import chain

        return getattr(chain, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
