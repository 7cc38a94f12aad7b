"""The namespace harness itself (tests/peers/netns.py): the NAT really hides the client, the
UDP firewall really drops UDP and lets TCP through, the tap sees what crossed, and cleanup
leaves nothing — even with a process still running in a namespace.

These run without a browser or SIP peer, in well under a second each; the topology tests
(test_net_nat.py) rely on every property checked here.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from twisted.trial import unittest

from tests.peers.netns import NetnsError, Tap, network_for

PUBLIC = "203.0.113.1"
NAT_OUTSIDE = "203.0.113.2"
CLIENT = "10.77.0.2"

#: Run in the client's namespace: send one UDP datagram and print what came back (or the
#: error), then connect over TCP and print what the server said.
CLIENT_SCRIPT = """
import json, socket, sys, time
host, udp_port, tcp_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = {}
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(5)
try:
    sent = time.monotonic()
    u.sendto(b"ping", (host, udp_port))
    out["udp"] = u.recvfrom(100)[0].decode()
    out["rtt"] = time.monotonic() - sent
except OSError as exc:
    out["udp_error"] = exc.errno
t = socket.create_connection((host, tcp_port), timeout=5)
out["tcp"] = t.recv(100).decode()
print(json.dumps(out))
"""


class HarnessTests(unittest.TestCase):
    def setUp(self) -> None:
        self.net = network_for(self)  # removed last, after every peer
        self.client = self.net.namespace("client")
        self.nat = self.net.namespace("nat")
        self.net.link(self.client, "eth0", f"{CLIENT}/24", self.nat, "lan", "10.77.0.1/24")
        self.pub = f"h{self.net.tag}"
        self.net.link(self.nat, "wan", f"{NAT_OUTSIDE}/24", None, self.pub, f"{PUBLIC}/24")
        self.net.route(self.client, "default", "10.77.0.1")
        self.net.masquerade(self.nat, "wan")

    def exchange(self) -> tuple[dict, tuple[str, int] | None]:
        """The client sends to our UDP socket and connects to our TCP listener (both on the
        public address): what the client printed, and where the datagram came from."""
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(udp.close)
        self.addCleanup(tcp.close)
        udp.bind((PUBLIC, 0))
        tcp.bind((PUBLIC, 0))
        tcp.listen(1)
        proc = self.client.popen(
            [sys.executable, "-c", CLIENT_SCRIPT, PUBLIC, str(udp.getsockname()[1]),
             str(tcp.getsockname()[1])], stdout=subprocess.PIPE)
        udp.settimeout(2)
        source = None
        try:
            data, source = udp.recvfrom(100)
            udp.sendto(b"pong:" + data, source)
        except socket.timeout:
            pass  # the firewall case: the client reports the error it got
        conn, _ = tcp.accept()
        conn.sendall(b"hello")
        conn.close()
        out, _ = proc.communicate(timeout=10)
        return json.loads(out), source

    def test_masquerade_hides_the_client_and_the_tap_sees_it(self) -> None:
        tap = Tap(self.pub)
        self.addCleanup(tap.close)
        printed, source = self.exchange()
        self.assertEqual(printed, {"udp": "pong:ping", "tcp": "hello", "rtt": printed["rtt"]})
        assert source is not None
        self.assertEqual(source[0], NAT_OUTSIDE)  # never the client's own 10.x address
        tap.close()
        self.assertEqual(tap.dropped, 0)
        [ping] = [p for p in tap.packets if p.payload == b"ping"]
        self.assertEqual((ping.src, ping.dst, ping.outgoing), (NAT_OUTSIDE, PUBLIC, False))
        [pong] = list(tap.containing(b"pong:"))
        self.assertEqual((pong.src, pong.dport, pong.outgoing), (PUBLIC, source[1], True))
        self.assertEqual(list(tap.containing(CLIENT.encode())), [])
        self.assertFalse([p for p in tap.packets if CLIENT in (p.src, p.dst)])

    def test_udp_dropped_tcp_passes(self) -> None:
        self.net.drop_udp(self.client)
        printed, source = self.exchange()
        self.assertIsNone(source)
        self.assertEqual(printed, {"udp_error": 1, "tcp": "hello"})  # EPERM from the firewall

    def test_close_kills_leftovers_and_removes_everything(self) -> None:
        names = [ns.name for ns in self.net.namespaces]
        proc = self.nat.popen(["sleep", "60"])
        with self.assertRaises(NetnsError) as caught:
            self.net.close()
        self.assertIn("nat", str(caught.exception))
        self.assertEqual(proc.wait(timeout=5), -9)  # killed by close()
        self.assertEqual(self.net.leftovers(), [])
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        self.assertFalse([name for name in names if name in listed])
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        self.assertNotIn(self.pub, links)
        self.net.close()  # idempotent: nothing more to say
