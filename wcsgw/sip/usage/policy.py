"""What the INVITE sessions of one endpoint ask for and accept of the RFC 3262 and RFC 4028
extensions: ``[sip] prack``, ``session_expires`` and ``min_se``, set once at start-up.

Why a per-endpoint registry and not an argument: the sessions are made by the call layer,
the test lines and the REFER paths, and each would have to pass the same three settings
through; the endpoint is what they all share.  Each session copies the policy into its
:class:`~wcsgw.sip.usage.ongoing.OngoingUsages` when it is made, and may change its copy.
"""

from __future__ import annotations

import weakref
from typing import Any

import attr

from wcsgw.sip.endpoint import SipEndpoint
from wcsgw.sip.usage.prack import PrackPolicy
from wcsgw.sip.usage.sessiontimer import TimerPolicy

__all__ = ["SessionPolicy", "policy_of", "policy_of_settings", "session_policy",
           "set_session_policy"]


@attr.s(frozen=True, auto_attribs=True)
class SessionPolicy:
    """Without a policy set, sessions use neither extension (the sans-IO tests' default)."""

    timer: TimerPolicy = attr.ib(factory=TimerPolicy)
    prack: PrackPolicy = "off"

    @property
    def extensions(self) -> tuple[str, ...]:
        """What a caller may Require of our sessions: timer once a policy is set (a session
        honours the peer's timer even when it asks for none), 100rel unless prack is off."""
        return ("timer",) + (("100rel",) if self.prack != "off" else ())


_POLICIES: weakref.WeakKeyDictionary[SipEndpoint, SessionPolicy] = weakref.WeakKeyDictionary()


def set_session_policy(endpoint: SipEndpoint | None, policy: SessionPolicy) -> None:
    """``endpoint``'s sessions made from now on use ``policy`` (None: a service not started)."""
    if endpoint is not None:
        _POLICIES[endpoint] = policy
        endpoint.extensions = policy.extensions


def session_policy(endpoint: SipEndpoint) -> SessionPolicy:
    return _POLICIES.get(endpoint) or SessionPolicy()


def policy_of(session_expires: int, min_se: int, prack: str) -> SessionPolicy:
    """The policy of the ``[sip]`` keys (checked by the config already)."""
    choices: dict[str, PrackPolicy] = {"off": "off", "supported": "supported",
                                       "required": "required"}
    return SessionPolicy(TimerPolicy(session_expires, min_se), choices[prack])


def policy_of_settings(settings: Any) -> SessionPolicy:
    """The policy of ``[sip]`` (a SipSettings, duck-typed: the SIP layer reads no config)."""
    return policy_of(settings.session_expires, settings.min_se, settings.prack)
