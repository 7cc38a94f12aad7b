"""The in-dialog usages of an INVITE session, one class per usage (SIP.js ``src/core``'s idea).

:mod:`~wcsgw.sip.usage.reinvite` — :class:`ReinviteClient` (our re-INVITE, with its glare
back-off) and :class:`ReinviteServer` (the peer's); :mod:`~wcsgw.sip.usage.refer` —
:class:`ReferClient` (our REFER and the NOTIFYs of its subscription) and
:class:`ReferServer` (the peer's REFER and the NOTIFYs we send); :mod:`~wcsgw.sip.usage.info`
— INFO both ways.  Each usage holds its own state and its own Deadlines in the endpoint's timer
heap, and talks to its session only through :class:`~wcsgw.sip.usage.host.UsageHost`; the
session (:class:`~wcsgw.sip.session.InviteSession`) composes them through
:class:`~wcsgw.sip.usage.ongoing.OngoingUsages`, which holds the ones under way and keeps the
rules that span two of them (one offer/answer at a time, §14.1).
"""
