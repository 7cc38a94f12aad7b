"""Bytes <-> messages: RFC 3261 §7 / §20 / §25 grammar, and stream framing."""

from __future__ import annotations

from wcsgw.sip.errors import SipParseError
from wcsgw.sip.message import AnyMessage, Message


def parse_message(data: bytes) -> AnyMessage:
    """Parse one complete datagram/frame (start line, headers, body)."""
    raise NotImplementedError


def serialize(msg: Message) -> bytes:
    raise NotImplementedError
