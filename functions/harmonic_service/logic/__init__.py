"""Pure service logic: no AWS, no I/O. Options and steps, patterns, summaries and the in-process chain.

What each stage does lives in its own module of `harmonic_service.stages`.
"""

from harmonic_service.logic.chain import MemoryContext, run_chain
from harmonic_service.logic.options import Options, parse_options, resolve_steps

__all__ = ["MemoryContext", "Options", "parse_options", "resolve_steps", "run_chain"]
