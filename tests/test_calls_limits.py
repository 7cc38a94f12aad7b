"""[limits] on the sans-IO side: the sliding call-rate window on a task.Clock, the port
allocator's reserve, and the CallGateway's caps (sessions per IP and in all, calls per session,
calls per minute per IP, the port reserve) with SIP and calls faked.  The same attacks through
real sockets are in test_security_limits.py."""

from __future__ import annotations

from typing import Any

from twisted.internet import task
from twisted.trial import unittest

from tests.call_fakes import FakePortAllocator
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.gateway import CallGateway
from wcsgw.calls.limits import SlidingWindow, address_key, effective_reserve
from wcsgw.calls.policy import Policy
from wcsgw.config import LimitsSettings
from wcsgw.media.ports import PortAllocator, PortsExhausted, PortsReserved

TESTLINES = "sip:{user}@127.0.0.1:5999"


class SlidingWindowTests(unittest.TestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.window = SlidingWindow(3, 60.0)

    def admit(self, key: str = "10.0.0.1") -> bool:
        return self.window.admit(key, self.clock.seconds())

    def test_limit_then_reopens_as_the_oldest_ages_out(self) -> None:
        for _ in range(3):
            self.assertTrue(self.admit())
            self.clock.advance(10)
        self.assertFalse(self.admit())  # t=30: three in the last 60 s
        self.assertEqual(self.window.retry_after("10.0.0.1", self.clock.seconds()), 30.0)
        self.clock.advance(29.9)
        self.assertFalse(self.admit())  # t=59.9: the first (t=0) still counts
        self.clock.advance(0.1)
        self.assertTrue(self.admit())  # t=60: it aged out; one slot
        self.assertFalse(self.admit())

    def test_refusals_do_not_extend_the_wait(self) -> None:
        for _ in range(3):
            self.admit()
        for _ in range(50):
            self.assertFalse(self.admit())
            self.clock.advance(1)
        self.clock.advance(10)  # t=60
        self.assertTrue(self.admit())

    def test_keys_are_independent(self) -> None:
        for _ in range(3):
            self.assertTrue(self.admit("10.0.0.1"))
        self.assertFalse(self.admit("10.0.0.1"))
        self.assertTrue(self.admit("10.0.0.2"))

    def test_idle_keys_are_forgotten(self) -> None:
        for n in range(100):
            self.admit(f"10.0.1.{n}")
        self.assertEqual(len(self.window), 100)
        self.clock.advance(61)
        self.admit("10.0.0.9")
        self.assertEqual(len(self.window), 1)


class PortReserveTests(unittest.TestCase):
    def setUp(self) -> None:
        self.ports = FakePortAllocator("127.0.0.1", 20000, 20007)  # 8 ports, none bound

    def test_effective_reserve_is_at_most_a_quarter_of_the_range(self) -> None:
        self.assertEqual(effective_reserve(64, 1000), 64)
        self.assertEqual(effective_reserve(64, 40), 10)
        self.assertEqual(effective_reserve(0, 1000), 0)

    def test_allocations_inside_keeping_leave_the_reserve(self) -> None:
        self.ports.allocate(2)
        self.assertEqual(self.ports.free, 6)
        with self.ports.keeping(4):
            self.ports.allocate(2)  # leaves exactly 4
            with self.assertRaises(PortsReserved):
                self.ports.allocate(1)
        self.assertEqual(self.ports.free, 4)
        self.ports.allocate(4)  # outside: the reserve may be used
        with self.assertRaises(PortsExhausted):
            self.ports.allocate(1)

    def test_reserve_refusal_is_a_kind_of_exhaustion(self) -> None:
        self.assertTrue(issubclass(PortsReserved, PortsExhausted))


# -- the gateway with fakes ------------------------------------------------------------------


class FakeSip:
    def register(self, account: Any, listener: Any = None, contact_user: Any = None) -> Any:
        return object()

    def unregister(self, handle: Any) -> None:
        pass


class Listener:
    def __init__(self) -> None:
        self.calls: list = []

    def session_status(self, status: str, sip_status: Any, info: str) -> None:
        pass

    def call_status(self, call: dict) -> None:
        self.calls.append(call)


class FakeCall:
    """A call that takes ``needs`` ports from the allocator on start (as a real one opens its
    sockets there) and gives them back when it ends or is abandoned."""

    allocator: PortAllocator | None = None
    needs = 3
    fail_with: Exception | None = None

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)
        self.taken: list[int] = []
        self.abandoned = False

    def start(self) -> None:
        if self.allocator is not None:
            for _ in range(self.needs):
                self.taken += self.allocator.allocate(1)
        if self.fail_with is not None:
            raise self.fail_with

    def abandon(self) -> None:
        self.abandoned = True
        self._release()

    def _release(self) -> None:
        if self.allocator is not None:
            self.allocator.release(self.taken)
        self.taken = []

    def hangup(self) -> None:
        self._release()
        self.on_gone(self)
        self.on_settled(self)

    def describe(self) -> dict:
        return {"callId": self.call_id, "sessionId": self.session_id, "status": "ESTABLISHED"}


class Invite:
    """What take_incoming reads of an INVITE request."""

    class _Party:
        def __init__(self, user: str) -> None:
            self.uri = type("U", (), {"user": user})()
            self.display_name = None

    def __init__(self) -> None:
        self.from_ = self._Party("1002")
        self.to = self._Party("1001")


class GatewayLimitsCase(unittest.TestCase):
    limits = LimitsSettings(calls_per_session=2, sessions_per_ip=2, calls_per_minute_per_ip=5,
                            max_sessions=3, port_reserve=4)

    def setUp(self) -> None:
        self.clock = task.Clock()
        self.made: list[FakeCall] = []

        def factory(**kw: Any) -> FakeCall:
            call = FakeCall(**kw)
            self.made.append(call)
            return call

        self.gateway = CallGateway(FakeSip(), Policy([], TESTLINES), factory,
                                   limits=self.limits, clock=self.clock.seconds)
        self.gateway.inbound_factory = self.gateway.file_call_factory = factory
        self.gateway.handed_call_factory = factory

    def session(self, name: str, peer: str = "10.0.0.1") -> str:
        self.gateway.open_session(name, Listener(), peer=peer)
        self.gateway.connect(name, None, False)
        return name

    def call(self, session: str, call_id: str | None = None) -> str:
        return self.gateway.call(session, call_id=call_id, callee="echo", visible_name=None,
                                 has_audio=True, has_video=False, sdp="v=0", sip_headers={})

    def refused(self, code: int, fn: Any, *args: Any, **kw: Any) -> CallError:
        with self.assertRaises(CallError) as caught:
            fn(*args, **kw)
        self.assertEqual(caught.exception.code, code, caught.exception.message)
        return caught.exception


class SessionCapTests(GatewayLimitsCase):
    def test_sessions_per_ip(self) -> None:
        self.session("a1")
        self.session("a2")
        error = self.refused(Codes.TOO_MANY_SESSIONS, self.gateway.open_session, "a3",
                             Listener(), peer="10.0.0.1")
        self.assertIn("limits.sessions_per_ip is 2", error.message)
        self.refused(Codes.TOO_MANY_SESSIONS, self.gateway.admit_session, "10.0.0.1")
        self.assertNotIn("a3", self.gateway.sessions)
        self.session("b1", peer="10.0.0.2")  # another address is not affected
        self.gateway.close_session("a1")
        self.gateway.admit_session("10.0.0.1")
        self.session("a3")

    def test_an_ipv6_client_is_its_64(self) -> None:
        """A host with a /64 could take a fresh address per session; counted as one."""
        self.session("a1", "2001:db8:1:2::10")
        self.session("a2", "2001:db8:1:2:aaaa:bbbb:cccc:dddd")
        error = self.refused(Codes.TOO_MANY_SESSIONS, self.gateway.open_session, "a3",
                             Listener(), peer="2001:db8:1:2::99")
        self.assertIn("2001:db8:1:2::/64", error.message)
        self.session("b1", "2001:db8:1:3::10")  # the next /64 is someone else

    def test_address_keys(self) -> None:
        self.assertEqual(address_key("192.0.2.7"), "192.0.2.7")
        self.assertEqual(address_key("::ffff:192.0.2.7"), "192.0.2.7")
        self.assertEqual(address_key("2001:db8::1"), "2001:db8::/64")
        self.assertEqual(address_key("fe80::1%eth0"), "fe80::/64")
        self.assertEqual(address_key("/run/wcsgw.sock"), "/run/wcsgw.sock")

    def test_max_sessions(self) -> None:
        self.session("a1", "10.0.0.1")
        self.session("b1", "10.0.0.2")
        self.session("c1", "10.0.0.3")
        error = self.refused(Codes.TOO_MANY_SESSIONS, self.gateway.open_session, "d1",
                             Listener(), peer="10.0.0.4")
        self.assertIn("limits.max_sessions is 3", error.message)
        self.gateway.close_session("b1")
        self.session("d1", "10.0.0.4")


class CallCapTests(GatewayLimitsCase):
    def test_calls_per_session_counts_live_calls(self) -> None:
        a = self.session("a")
        first = self.call(a)
        self.call(a)
        error = self.refused(Codes.TOO_MANY_CALLS, self.call, a, "third")
        self.assertEqual(error.message, "Too many calls: limits.calls_per_session is 2")
        self.assertNotIn("third", self.gateway.calls)
        self.call(self.session("b", "10.0.0.2"))  # the other session is not affected
        self.gateway.hangup(a, first)
        self.call(a)

    def test_incoming_calls_count_and_are_refused_at_the_cap(self) -> None:
        a = self.session("a")
        session = self.gateway.sessions[a]
        self.gateway.take_incoming(session, object(), Invite())
        self.call(a)
        self.refused(Codes.TOO_MANY_CALLS, self.gateway.take_incoming, session, object(),
                     Invite())
        self.refused(Codes.TOO_MANY_CALLS, self.call, a)
        self.assertEqual(len(session.calls), 2)

    def test_rest_handed_calls_count(self) -> None:
        a = self.session("a")
        self.call(a)
        self.gateway.startup(call_id=None, callee="echo", account=None, session_id=a)
        self.refused(Codes.TOO_MANY_CALLS, self.gateway.startup, call_id="h2", callee="echo",
                     account=None, session_id=a)
        self.assertNotIn("h2", self.gateway.calls)


class CallRateTests(GatewayLimitsCase):
    def test_websocket_and_rest_share_the_window_of_an_address(self) -> None:
        a = self.session("a")
        for _ in range(3):
            self.gateway.hangup(a, self.call(a))
            self.clock.advance(1)
        self.gateway.terminate(self.gateway.startup(call_id=None, callee="echo", account=None,
                                                    peer="10.0.0.1"))
        self.gateway.hangup(a, self.call(a))  # the fifth in 60 s
        error = self.refused(Codes.CALL_RATE, self.call, a, "sixth")
        self.assertIn("limits.calls_per_minute_per_ip is 5", error.message)
        self.assertNotIn("sixth", self.gateway.calls)
        self.refused(Codes.CALL_RATE, self.gateway.startup, call_id=None, callee="echo",
                     account=None, peer="10.0.0.1")
        # Another address, and the operator's own calls without an address, are not limited.
        self.call(self.session("b", "10.0.0.2"))
        self.gateway.startup(call_id=None, callee="echo", account=None)
        self.clock.advance(60)
        self.call(a)

    def test_refused_calls_do_not_count(self) -> None:
        a = self.session("a")
        self.call(a)
        self.call(a)
        for _ in range(10):
            self.refused(Codes.TOO_MANY_CALLS, self.call, a)
        self.gateway.hangup_all()
        for _ in range(3):
            self.gateway.hangup(a, self.call(a))


class PortTests(GatewayLimitsCase):
    limits = LimitsSettings(calls_per_session=10, port_reserve=4)

    def setUp(self) -> None:
        super().setUp()
        self.ports = FakePortAllocator("127.0.0.1", 20000, 20015)  # 16 ports: reserve 4
        self.gateway.media_ports = self.ports
        FakeCall.allocator = self.ports
        self.addCleanup(setattr, FakeCall, "allocator", None)

    def test_a_session_with_a_call_cannot_take_the_reserve(self) -> None:
        a = self.session("a")
        for _ in range(4):
            self.call(a)  # 16 -> 4 free: each left at least 4
        self.assertEqual(self.ports.free, 4)
        error = self.refused(Codes.NO_PORTS, self.call, a, "hog")
        self.assertIn("limits.port_reserve", error.message)
        self.assertNotIn("hog", self.gateway.calls)
        self.assertEqual(self.ports.free, 4)  # what the refused call took is back
        self.assertTrue(self.made[-1].abandoned)
        # Another session's first call may use the reserve.
        self.call(self.session("b", "10.0.0.2"))
        self.assertEqual(self.ports.free, 1)
        error = self.refused(Codes.NO_PORTS, self.call, self.session("c", "10.0.0.3"), "c1")
        self.assertEqual(error.message, "No media ports free")
        self.assertNotIn("c1", self.gateway.calls)
        self.assertEqual(self.ports.free, 1)
        self.assertEqual((self.gateway.refusals["port_reserve"], self.gateway.refusals["ports"]),
                         (1, 1))

    def test_rest_exhaustion_leaves_no_call(self) -> None:
        for _ in range(5):
            self.gateway.startup(call_id=None, callee="echo", account=None)
        self.assertEqual(self.ports.free, 1)
        self.refused(Codes.NO_PORTS, self.gateway.startup, call_id="ghost", callee="echo",
                     account=None)
        self.assertEqual(self.gateway.find({"callId": "ghost"}), [])
        self.assertEqual(self.ports.free, 1)

    def test_any_failure_of_start_leaves_nothing(self) -> None:
        FakeCall.fail_with = OSError("the recording folder went away")
        self.addCleanup(setattr, FakeCall, "fail_with", None)
        a = self.session("a")
        self.assertRaises(OSError, self.call, a, "broken")
        self.assertEqual(self.gateway.calls, {})
        self.assertEqual(self.gateway.sessions[a].calls, {})
        self.assertEqual(self.ports.free, 16)
        self.assertFalse(self.gateway.unsettled)
        self.assertTrue(self.gateway.when_idle().called)


class PortFragmentationTests(unittest.TestCase):
    def test_single_ports_fill_holes_so_pairs_stay_whole(self) -> None:
        """A call takes a pair and a single, the echo line another pair: without hole filling
        every single split a pair and 10 free ports of 40 held no pair at all."""
        ports = FakePortAllocator("127.0.0.1", 20000, 20039)
        for _ in range(6):
            ports.allocate(2, even=True)
            ports.allocate(1)
            ports.allocate(2, even=True)
        self.assertEqual(ports.free, 10)
        ports.allocate(2, even=True)  # one more call still fits
        ports.allocate(1)
        ports.allocate(2, even=True)
