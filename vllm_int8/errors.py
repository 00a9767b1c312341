"""Errors in what a user passed (a model path, a config, a task): the CLI prints them in one line."""

from __future__ import annotations


class UserInputError(ValueError):
    """A bad argument, named in the message; no traceback is needed to act on it."""
