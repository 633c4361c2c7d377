"""Harmonic's Lambda code: thin handlers over pure stage logic, with small AWS adapters."""
