"""Errors raised by the harmonic package."""


class InvalidAudio(ValueError):
    """The input is not audio we can process: a permanent error, never worth retrying.

    The message says what is wrong in words a user can act on ("WAV has 0 channels", ...).
    """
