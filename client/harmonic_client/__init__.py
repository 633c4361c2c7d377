"""Client for Harmonic's HTTP API: ``Client(endpoint).invoke(path, wait=True)`` and the ``harmonic`` CLI."""

from harmonic_client.client import ApiError, Client

__version__ = "0.2.0"
__all__ = ["ApiError", "Client", "__version__"]
