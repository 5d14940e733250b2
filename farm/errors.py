"""Errors raised by the farm core; node/ and gui/ translate them at their edges."""

from __future__ import annotations


class FarmError(Exception):
    """Base of every error the farm raises on purpose; its message is for a person."""


class SpecError(FarmError):
    """An edit spec is malformed, of an unknown schema version, or has bad params."""


class ImageError(FarmError):
    """An image or mask cannot be used: corrupt, unsupported, too large, wrong size."""


class EngineError(FarmError):
    """An engine is unknown, unavailable (weights missing), or failed while running."""


class JobCancelled(FarmError):
    """The job was cancelled while it ran."""


class IllegalTransition(FarmError):
    """A job was asked to move between two states that the state machine forbids."""


class OutputError(FarmError):
    """The output location cannot be used (a file where a folder should be, no space...)."""
