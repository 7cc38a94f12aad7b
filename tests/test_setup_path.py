"""What the call set-up path was cut to (docs/performance.md, "Lever: call set-up"): a
``callStatus`` goes to the kernel at once on a plain TCP socket, and an INVITE session no longer
builds a random generator of its own.

``write_now`` runs on Twisted's own ``FileDescriptor.doWrite`` (a real one, with a recording
reactor and ``writeSomeData``), so the tests check the behaviour the gateway relies on — the
queued bytes written in order, the reactor's writer removed once the buffer is empty, a write
error left for the reactor — not a fake of it.
"""

from __future__ import annotations

import random
from typing import Any

from twisted.internet import abstract, main
from twisted.trial import unittest

from tests.support import inline
from tests.test_api_fakes import FakeGateway, listen_site, ws_connect
from tests.test_sip_invite import SDP_OFFER, CallHarness
from wcsgw.api.ws import write_now
from wcsgw.calls.status import CallStatus
from wcsgw.sip.invite import OutgoingInvite


class RecordingReactor:
    """Only what FileDescriptor.startWriting/stopWriting call."""

    def __init__(self) -> None:
        self.writers: set[Any] = set()

    def addWriter(self, writer: Any) -> None:  # noqa: N802 - Twisted's name
        self.writers.add(writer)

    def removeWriter(self, writer: Any) -> None:  # noqa: N802 - Twisted's name
        self.writers.discard(writer)


class TcpLike(abstract.FileDescriptor):
    """A FileDescriptor whose socket is a list; ``fail`` makes the next write an error."""

    def __init__(self, accept: int | None = None) -> None:
        self.reactor_ = RecordingReactor()
        super().__init__(reactor=self.reactor_)  # type: ignore[arg-type]
        self.connected = 1
        self.wire: list[bytes] = []
        self.accept = accept  # bytes the "kernel" takes per write; None: all
        self.fail = False

    def writeSomeData(self, data: bytes) -> int | Exception:  # noqa: N802 - Twisted's name
        if self.fail:
            return main.CONNECTION_LOST
        taken = bytes(data[: self.accept]) if self.accept is not None else bytes(data)
        self.wire.append(taken)
        return len(taken)


class WriteNowTests(unittest.TestCase):
    def test_queued_bytes_go_out_in_order_and_the_writer_is_removed(self) -> None:
        t = TcpLike()
        t.write(b"first ")
        t.write(b"second")
        self.assertEqual(t.wire, [])  # Twisted waits for the reactor
        self.assertIn(t, t.reactor_.writers)
        write_now(t)
        self.assertEqual(b"".join(t.wire), b"first second")
        self.assertNotIn(t, t.reactor_.writers)

    def test_a_partial_write_leaves_the_rest_to_the_reactor(self) -> None:
        t = TcpLike(accept=3)
        t.write(b"abcdef")
        write_now(t)
        self.assertEqual(t.wire, [b"abc"])
        self.assertIn(t, t.reactor_.writers)
        t.accept = None
        t.doWrite()  # what the reactor does next
        self.assertEqual(b"".join(t.wire), b"abcdef")
        self.assertNotIn(t, t.reactor_.writers)

    def test_a_write_error_is_left_for_the_reactor(self) -> None:
        t = TcpLike()
        t.write(b"abc")
        t.fail = True
        write_now(t)  # no exception here
        self.assertEqual(t.wire, [])
        self.assertIn(t, t.reactor_.writers)  # the reactor's next doWrite finds the error
        self.assertIs(t.doWrite(), main.CONNECTION_LOST)

    def test_a_closing_connection_keeps_the_reactors_timing(self) -> None:
        for attribute, value in (("disconnecting", True), ("_writeDisconnecting", True),
                                 ("connected", 0)):
            t = TcpLike()
            t.write(b"abc")
            setattr(t, attribute, value)
            write_now(t)
            self.assertEqual(t.wire, [], attribute)
            self.assertIn(t, t.reactor_.writers, attribute)

    def test_a_transport_without_do_write_is_left_alone(self) -> None:
        class Wrapped:  # TLS (TLSMemoryBIOProtocol) or a protocol wrapper
            connected = 1
            disconnecting = False

        write_now(Wrapped())  # nothing to call, no error
        write_now(None)


class CallStatusTests(unittest.TestCase):
    @inline
    async def test_call_status_outside_a_request_arrives_in_order(self) -> None:
        gateway = FakeGateway()
        port = listen_site(self, gateway, ping_interval=30.0)
        ws = await ws_connect(self, port)
        session_id = (await ws.request("connect"))["result"]["sessionId"]
        listener = gateway.listeners[session_id]
        # as the gateway does when a 200 OK arrives: a ladder note, then the status
        listener.notify("sipLadder", {"callId": "c1", "n": 1})
        listener.call_status({"callId": "c1", "status": CallStatus.ESTABLISHED})
        listener.notify("sipLadder", {"callId": "c1", "n": 2})
        last = await ws.notification("sipLadder", n=2)
        status = await ws.notification("callStatus")
        first = await ws.notification("sipLadder", n=1)
        self.assertEqual(status["params"], {"callId": "c1", "status": "ESTABLISHED"})
        frames = ws.frames.events
        self.assertLess(frames.index(first), frames.index(status))
        self.assertLess(frames.index(status), frames.index(last))


class SessionRandomTests(unittest.TestCase):
    def test_sessions_share_one_system_random(self) -> None:
        h = CallHarness()
        second = OutgoingInvite(h.ep, h.account, "sip:1003@127.0.0.1", SDP_OFFER,
                                listener=lambda e: None)
        self.assertIsInstance(h.call.rng, random.SystemRandom)
        self.assertIs(h.call.rng, second.rng)

    def test_a_given_generator_is_kept(self) -> None:
        seeded = random.Random(7)
        self.assertIs(CallHarness(rng=seeded).call.rng, seeded)
