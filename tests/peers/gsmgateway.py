"""A "GSM gateway" for tests: the hop between an operator's SIP server and a mobile phone.

A second Kamailio (``gsm-gateway.cfg`` beside this file) plays the operator's PSTN/GSM
gateway: the mobile phone (baresip) attaches by registering its MSISDN, the operator's server
is its only trunk, and it takes E.164 numbers only (``+447700900123``; anything else gets
484), rewrites them to the MSISDN (``447700900123``) and forwards the call to the phone's
registered contact, staying in the dialog.  Given a media relay (``media_relay``, an
rtpengine's ng socket: :class:`~tests.peers.rtpengine.RtpEngine`), it anchors the call's media
there too, as a real gateway terminates it.  The operator's server routes numbers to it when
started with :meth:`GsmGateway.trunk_define`::

    relay = RtpEngine()
    gsm = GsmGateway(msisdn="447700900123", password="secret", operator_port=...,
                     media_relay=relay.ng_socket)
    operator = Kamailio(port=..., defines=gsm.trunk_define())

Both ports are picked before either starts, since each names the other.  Lifecycle,
process group and inspection are :class:`~tests.peers.kamailio.Kamailio`'s.
"""

from __future__ import annotations

from pathlib import Path

from tests.peers.kamailio import HERE, Kamailio

__all__ = ["GsmGateway"]


class GsmGateway(Kamailio):
    """The GSM gateway hop; ``msisdn`` is the one subscriber that may attach."""

    template: Path = HERE / "gsm-gateway.cfg"

    def __init__(self, msisdn: str, password: str, operator_port: int,
                 port: int | None = None, media_relay: str | None = None) -> None:
        defines = {"OPERATOR_PORT": str(operator_port)}
        if media_relay is not None:
            defines["RTPENGINE_SOCK"] = f'"{media_relay}"'
        super().__init__(port=port, users={msisdn: password}, defines=defines)
        self.msisdn = msisdn

    def trunk_define(self) -> dict[str, str]:
        """The operator's Kamailio defines that send phone numbers here (kamailio.cfg)."""
        return {"GSM_GATEWAY": f'"sip:{self.host}:{self.port}"'}
