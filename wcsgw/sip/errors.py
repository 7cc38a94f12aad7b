"""Errors raised by the SIP layer."""

from __future__ import annotations


class SipError(Exception):
    """Base of every error the SIP layer raises on purpose."""


class SipParseError(SipError, ValueError):
    """Bytes that are not a well-formed SIP message (or a malformed header inside one).

    ``status`` is the response code a UAS should answer with (400 unless a more precise code
    applies, e.g. 505 for an unsupported version, 413 for an oversized message).
    ``partial`` holds what could be read of a request's start line and headers, so a 400 can
    still be addressed back along its Via; ``None`` when nothing usable was found.
    """

    def __init__(self, reason: str, status: int = 400, partial: object | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.partial = partial
