"""Errors raised by the SDP layer."""

from __future__ import annotations


class SdpError(Exception):
    """Base of every error the SDP layer raises on purpose."""


class SdpParseError(SdpError, ValueError):
    """Text that is not a well-formed session description.

    ``reason`` says what is wrong; when one line is to blame it starts with
    ``line N:`` and quotes the line, so a log entry is enough to see what the peer sent.
    ``line_number`` (1-based, counting every line of the input) and ``line`` are ``None``
    for problems of the description as a whole (empty input, a missing ``o=`` line).
    """

    def __init__(self, reason: str, line_number: int | None = None, line: str | None = None):
        if line_number is not None:
            shown = line if line is None or len(line) <= 80 else line[:77] + "..."
            reason = f"line {line_number}: {reason}: {shown!r}"
        super().__init__(reason)
        self.reason = reason
        self.line_number = line_number
        self.line = line


class SdpNegotiationError(SdpError, ValueError):
    """An offer we cannot answer (RFC 3264 §6): no stream with a codec we support.

    SIP answers such an offer with 488 Not Acceptable Here; the call status info is
    ``No common codecs``.
    """
