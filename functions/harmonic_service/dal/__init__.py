"""Small AWS adapters, the only code that talks to boto3 (clients are created on first use, not at import)."""
