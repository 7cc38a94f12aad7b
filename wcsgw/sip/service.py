"""Twisted service that runs the SIP endpoint (UDP + TCP listeners, registrations).

Placeholder: the SIP engineer fills this in.  ``make_service`` in wcsgw/service.py builds it as
``SipService(config.sip, accounts=config.accounts)`` and adds it to the MultiService.
"""

from __future__ import annotations

from typing import Any, Sequence

from twisted.application.service import Service


class SipService(Service):
    def __init__(self, settings: Any, accounts: Sequence[Any] = ()) -> None:
        self.settings = settings
        self.accounts = list(accounts)
