"""The one exception type users see: every message says what was wrong, where, and how to fix it."""


class PhenoseqError(ValueError):
    """Bad input or a refused operation. The CLI prints the message and exits with status 2."""
