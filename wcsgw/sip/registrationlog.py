"""Why a registration failed, in the words an operator needs to fix it.

A failed REGISTER is the most common support question ("the phone shows offline"), and the
event alone (``RegistrationFailed``, a status and a reason) does not say where the REGISTER
went or what to check.  :func:`failure_text` makes the one warn line of each failed attempt:
the AOR (never the password: it lives only in the digest client), the registrar's transport
and address, what happened, and the retry.

Pure: event and target in, text out (tested without a registrar).
"""

from __future__ import annotations

import ipaddress

from wcsgw.sip.events import RegistrationFailed
from wcsgw.sip.target import Target

__all__ = ["FAILURE_FORMAT", "failure_fields", "failure_text", "where"]

#: SIP status -> what it means for a REGISTER, in the terms of the account's settings
_BY_STATUS = {
    401: "credentials refused: wrong login, authentication name or password",
    407: "credentials refused by the proxy: wrong login, authentication name or password",
    403: "forbidden: the registrar refuses this account (disabled, or not allowed from here)",
    404: "not found: the registrar has no such user (check login and domain)",
    408: "the registrar timed out",
    480: "temporarily unavailable",
    500: "the registrar failed",
    503: "the registrar is unavailable",
}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def where(target: Target) -> str:
    """``UDP 192.0.2.1:5060`` (IPv6 in brackets)."""
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"{target.transport} {host}:{target.port}"


def _what(event: RegistrationFailed, target: Target) -> str:
    if event.status is None:
        if event.reason == "timeout":
            return f"no answer from {where(target)} (timeout)"
        if event.reason == "transport":
            causes = "connection refused or ICMP unreachable"
            if not _is_ip(target.host):
                causes = f"DNS failure for {target.host}, {causes}"
            return f"could not reach {where(target)} (transport error: {causes})"
        if event.reason.startswith("No SIP server answers at ") and event.reason.endswith(")"):
            # an ICMP error's words (wcsgw.sip.udperrors): "... (ICMP port unreachable)"
            icmp = event.reason[event.reason.rfind("(") + 1:-1]
            return f"could not reach {where(target)} (transport error: {icmp}: no SIP server there)"
        return f"{event.reason} ({where(target)})"
    meaning = _BY_STATUS.get(event.status)
    if meaning is None and 300 <= event.status < 400:
        meaning = "redirected: the gateway does not follow redirects for REGISTER"
    if meaning is None and event.auth:
        meaning = "refused"
    detail = f" ({meaning})" if meaning else ""
    return f"{event.reason}{detail} from {where(target)}"


#: the warn line's format; its fields (:func:`failure_fields`) are the JSON log's fields too
FAILURE_FORMAT = "registration {aor} failed: {why}; {then}"


def failure_fields(aor: str, event: RegistrationFailed, target: Target) -> dict[str, object]:
    """The fields of one failed attempt's warn line: ``aor``, ``why``, ``then`` (the retry),
    ``registrar`` (transport host:port) and ``sip_status`` (None: no answer)."""
    if event.retry_in is None:
        then = "not retried"
    else:
        then = f"retrying in {max(1, round(event.retry_in))} s"
    return {"aor": aor, "why": _what(event, target), "then": then,
            "registrar": where(target), "sip_status": event.status}


def failure_text(aor: str, event: RegistrationFailed, target: Target) -> str:
    """The warn line of one failed attempt (see the module doc)."""
    return FAILURE_FORMAT.format(**failure_fields(aor, event, target))
