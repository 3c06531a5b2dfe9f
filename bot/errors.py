"""Errors the CLI turns into one line on stderr and exit code 1."""


class HuaxiangError(Exception):
    """A failure the user can act on; the message says what and where."""
