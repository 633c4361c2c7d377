"""Client for Harmonic's HTTP API: ``Client(endpoint).invoke(path, wait=True)`` and the ``harmonic`` CLI."""

from harmonic_client.client import ApiError, Client

__all__ = ["ApiError", "Client"]
