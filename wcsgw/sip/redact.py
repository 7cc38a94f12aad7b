"""What of a SIP message may be shown to a person: the message with its secrets taken out.

The SIP ladder (:mod:`wcsgw.calls.ladders`) shows every message of a call to the browser that
placed it and to the operator.  A SIP message carries credentials in several places, and none
of them may leave the gateway: the digest ``response``/``cnonce``/``nonce`` of Authorization
and Proxy-Authorization (a response is an offline password guess away from the password), the
server's nonces (a replayable challenge), a password in a URI's userinfo, SDES keys
(``a=crypto ... inline:``), MIKEY keys (``a=key-mgmt``), ICE passwords (``a=ice-pwd``) and SDP
``k=`` lines.  Bodies other than SDP (DTMF digits in INFO may be a PIN) are shown by type and
length only.

It works on the raw text line by line, not on a parsed message: a message the parser refuses
must be shown (and redacted) too, and what cannot be read safely is replaced whole — it fails
closed.  Pure: bytes in, text out.
"""

from __future__ import annotations

import re

__all__ = ["HIDDEN", "MAX_TEXT", "redact"]

#: what stands for a value taken out
HIDDEN = "…"
#: the most of one message's text kept (characters); the rest is cut and marked
MAX_TEXT = 8192

#: credential headers whose digest parameters are filtered (lower-case names)
_CREDENTIALS = frozenset({"authorization", "proxy-authorization"})
_CHALLENGES = frozenset({"www-authenticate", "proxy-authenticate"})
#: whole values taken out: their every parameter is a secret or a proof
_OPAQUE = frozenset({"authentication-info", "proxy-authentication-info"})
#: the digest parameters shown; every other one (response, cnonce, nonce, opaque, userhash,
#: nextnonce, rspauth, anything unknown) is hidden
_KEEP_CREDENTIAL = frozenset({"username", "realm", "uri", "algorithm", "qop", "nc"})
_KEEP_CHALLENGE = frozenset({"realm", "domain", "algorithm", "qop", "stale", "charset"})

_HEADER = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]*:(.*)\Z", re.DOTALL)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: a password in a URI's userinfo (RFC 3261 §19.1.1, deprecated but legal)
_URI_PASSWORD = re.compile(r"((?:sips?|tel):[^:@;?>\s\"]*):[^@;?>\s\"]*@", re.IGNORECASE)
_SDP_SECRET = re.compile(r"^(a=ice-pwd:|a=key-mgmt:|k=)(.*)$", re.IGNORECASE)
_LOOKS_SECRET = re.compile(r"response|nonce|inline:|ice-pwd|digest|basic|bearer",
                           re.IGNORECASE)
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_INLINE = re.compile(r"inline:[^\s;]*", re.IGNORECASE)
_HEAD_END = re.compile(r"\r?\n\r?\n")
#: what a URI's password becomes (the scheme and user kept)
_URI_HIDDEN = rf"\1:{HIDDEN}@"


def redact(data: bytes, *, hide_user: bool = False, limit: int = MAX_TEXT) -> str:
    """``data`` (one SIP message as it went over the wire) as text a person may see.

    ``hide_user``: the Authorization username is hidden too (a server-held account, whose
    credentials are the operator's, not the browser's).  The text is cut at ``limit``
    characters, its end saying how much was left out."""
    text = data.decode("utf-8", errors="replace")
    head, sep, body = _split(text)
    lines = _unfold(head.split("\n"))
    content_type = ""
    out: list[str] = []
    for line in lines:
        match = _HEADER.match(line)
        if match is None or not out:  # the start line, or something that is no header
            hidden = out and _LOOKS_SECRET.search(line)  # a mangled credential: fail closed
            out.append(HIDDEN if hidden else _uri_passwords(line))
            continue
        name, value = match.group(1), match.group(2).strip()
        lower = name.lower()
        if lower in ("content-type", "c"):
            content_type = value.split(";")[0].strip().lower()
        out.append(f"{name}: {_header_value(lower, value, hide_user)}")
    shown = "\r\n".join(out)
    if sep:
        shown += "\r\n\r\n" + _body(content_type, body)
    if len(shown) > limit:
        shown = shown[:limit] + f"\r\n{HIDDEN} [truncated: {len(shown) - limit} more characters]"
    return shown


def _split(text: str) -> tuple[str, str, str]:
    """Head, separator, body (the first empty line ends the head: CRLF or bare LF)."""
    match = _HEAD_END.search(text)
    if match is None:
        return text.rstrip("\r\n"), "", ""
    return text[:match.start()], match.group(0), text[match.end():]


def _unfold(lines: list[str]) -> list[str]:
    """Header lines with their continuation lines (RFC 3261 §7.3.1 folding) joined, so that
    a credential folded over two lines is seen whole."""
    out: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r")
        if line[:1] in (" ", "\t") and out:
            out[-1] = out[-1].rstrip() + " " + line.strip()
        else:
            out.append(line)
    return out


def _header_value(lower: str, value: str, hide_user: bool) -> str:
    if lower in _CREDENTIALS:
        return _auth(value, _KEEP_CREDENTIAL - ({"username"} if hide_user else set()))
    if lower in _CHALLENGES:
        return _auth(value, _KEEP_CHALLENGE)
    if lower in _OPAQUE:
        return HIDDEN
    return _uri_passwords(value)


def _uri_passwords(text: str) -> str:
    """``text`` with the passwords of its URIs hidden.  The pattern cannot match without an
    ``@``, and most header values have none: they skip the regex (the ladder redacts every
    message of a call, its 200 OK on the way to ESTABLISHED)."""
    return _URI_PASSWORD.sub(_URI_HIDDEN, text) if "@" in text else text


def _auth(value: str, keep: frozenset[str]) -> str:
    """An Authorization-like value with only ``keep``'s parameters shown.  A scheme other
    than Digest (Basic, Bearer ...) is all secret; what does not parse is hidden whole."""
    parts = _auth_parts(value)
    if parts is None:
        scheme = _TOKEN.match(value)
        return f"{scheme.group(0)} {HIDDEN}" if scheme else HIDDEN
    shown: list[str] = []
    digest = False
    for kind, name, raw in parts:
        if kind == "scheme":
            digest = name.lower() == "digest"
            shown.append(("" if not shown else ", ") + f"{name} " + ("" if digest else HIDDEN))
            continue
        if not digest:
            continue
        item = f"{name}={raw}" if name.lower() in keep else f'{name}="{HIDDEN}"'
        shown.append(item if shown[-1].endswith(" ") else ", " + item)
    return "".join(shown).strip()


def _auth_parts(value: str) -> list[tuple[str, str, str]] | None:
    """``value`` as (``"scheme"``, name, "") and (``"param"``, name, raw value) items in
    order, or None when it is not made of them (fail closed)."""
    parts: list[tuple[str, str, str]] = []
    i, n = 0, len(value)
    while True:
        while i < n and value[i] in " \t,":
            i += 1
        if i >= n:
            return parts if parts and parts[0][0] == "scheme" else None
        token = _TOKEN.match(value, i)
        if token is None:
            return None
        name, i = token.group(0), token.end()
        j = i
        while j < n and value[j] in " \t":
            j += 1
        if j >= n or value[j] != "=":
            parts.append(("scheme", name, ""))  # a scheme (or a token68's start: not Digest)
            if name.lower() != "digest":
                return parts
            continue
        j += 1
        while j < n and value[j] in " \t":
            j += 1
        if j < n and value[j] == '"':
            end = _quoted_end(value, j)
            if end is None:
                return None
            raw, i = value[j:end], end
        else:
            token = _TOKEN.match(value, j)
            if token is None:
                return None
            raw, i = token.group(0), token.end()
        parts.append(("param", name, raw))


def _quoted_end(value: str, start: int) -> int | None:
    """The index after the quoted string opening at ``start`` (backslash escapes)."""
    quoted = _QUOTED.match(value, start)
    return quoted.end() if quoted is not None else None


def _body(content_type: str, body: str) -> str:
    if not body:
        return ""
    if content_type != "application/sdp":
        size = len(body.encode("utf-8", errors="replace"))
        return f"[{content_type or 'body'}, {size} bytes]"
    lines = []
    for raw in body.split("\n"):
        line = raw.rstrip("\r")
        secret = _SDP_SECRET.match(line)
        if secret is not None:
            kept = secret.group(2).split(":", 1)[0] + ":" if secret.group(1) == "k=" \
                and ":" in secret.group(2) else ""
            line = secret.group(1) + kept + HIDDEN
        elif line.lower().startswith("a=crypto:"):
            line = _INLINE.sub(f"inline:{HIDDEN}", line)
        lines.append(line)
    return "\r\n".join(lines)
