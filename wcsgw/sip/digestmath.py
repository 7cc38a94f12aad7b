"""The Digest arithmetic (RFC 7616 §3.4.1 - §3.4.3, RFC 2617): the ``response`` hash and the
``Authorization`` value answering a challenge — pure functions, tested against the RFCs' own
vectors.  What to answer, and whether, is :class:`wcsgw.sip.digest.DigestClient`'s."""

from __future__ import annotations

import hashlib

from wcsgw.sip.digestgrammar import HASHLIB_NAMES, Challenge, Credentials, DigestError


def _h(algorithm: str, data: str | bytes) -> str:
    base = algorithm.upper().removesuffix("-SESS")
    name = HASHLIB_NAMES.get(base)
    if name is None:
        raise DigestError(f"unsupported digest algorithm {algorithm!r}")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.new(name, raw).hexdigest()


def compute_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    cnonce: str | None = None,
    nc: int = 1,
    qop: str | None = None,
    body: bytes = b"",
) -> str:
    """The ``response`` parameter: KD(H(A1), nonce:nc:cnonce:qop:H(A2)) (RFC 7616 §3.4.1).

    ``-sess`` algorithms fold the nonce and cnonce into A1 (§3.4.2); ``qop=auth-int`` folds the
    hash of the body into A2 (§3.4.3).  Without qop it is the RFC 2069 form
    KD(H(A1), nonce:H(A2)).
    """
    algorithm = algorithm.upper()
    ha1 = _h(algorithm, f"{username}:{realm}:{password}")
    if algorithm.endswith("-SESS"):
        if cnonce is None:
            raise DigestError("-sess algorithms need a cnonce")
        ha1 = _h(algorithm, f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        ha2 = _h(algorithm, f"{method}:{uri}:{_h(algorithm, body)}")
    else:
        ha2 = _h(algorithm, f"{method}:{uri}")
    if qop is None:
        return _h(algorithm, f"{ha1}:{nonce}:{ha2}")
    if cnonce is None:
        raise DigestError("qop needs a cnonce")
    return _h(algorithm, f"{ha1}:{nonce}:{nc:08x}:{cnonce}:{qop}:{ha2}")


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_authorization(
    challenge: Challenge,
    credentials: Credentials,
    *,
    method: str,
    uri: str,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """The ``Authorization``/``Proxy-Authorization`` value answering ``challenge``.

    Parameter order follows RFC 3261 §22.4's examples; ``algorithm`` and ``qop`` are tokens
    (unquoted, RFC 3261 §25.1 / RFC 8760 §2.3), ``nc`` is eight hex digits.  With
    ``userhash=true`` the username is sent hashed (RFC 7616 §3.4.4).
    """
    if not challenge.supported:
        raise DigestError(f"cannot answer a {challenge.algorithm} challenge with qop {challenge.qop!r}")
    qop = challenge.chosen_qop()
    use_cnonce = qop is not None or challenge.algorithm.endswith("-SESS")
    response = compute_response(
        algorithm=challenge.algorithm,
        username=credentials.username,
        realm=challenge.realm,
        password=credentials.password,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        cnonce=cnonce if use_cnonce else None,
        nc=nc,
        qop=qop,
        body=body,
    )
    username = credentials.username
    if challenge.userhash:
        username = _h(challenge.algorithm, f"{username}:{challenge.realm}")
    parts = [
        f"username={_quote(username)}",
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
        f"algorithm={_algorithm_token(challenge.algorithm)}",
    ]
    if use_cnonce:
        parts.append(f"cnonce={_quote(cnonce)}")
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    if qop is not None:
        parts.append(f"qop={qop}")
        parts.append(f"nc={nc:08x}")
    if challenge.userhash:
        parts.append("userhash=true")
    return "Digest " + ", ".join(parts)


def _algorithm_token(algorithm: str) -> str:
    """Canonical spelling: ``MD5-sess``, ``SHA-256-sess`` as the RFCs write them."""
    return algorithm[:-5] + "-sess" if algorithm.endswith("-SESS") else algorithm
