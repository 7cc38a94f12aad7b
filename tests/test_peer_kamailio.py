"""The Kamailio test peer itself: starts, answers, reports bindings, stops leaving nothing.

These tests use raw SIP text on plain sockets on purpose: they check the harness and the peer,
not wcsgw's SIP stack, so a bug there cannot hide a broken harness (or the other way round).
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import uuid

import psutil
from twisted.internet import task
from twisted.trial import unittest

from tests.peers.kamailio import Kamailio, KamailioError, parse_ul_dump
from tests.peers.ports import free_port


def _reactor():
    from twisted.internet import reactor

    return reactor


def _group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes in process group ``pgid``."""
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return members


def _port_free(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


async def _udp_exchange(port: int, messages: list, timeout: float = 3.0) -> list[str]:
    """Send each message from one UDP socket and collect one final (non-1xx) reply to each,
    polling without blocking the reactor."""
    reactor = _reactor()
    replies = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        for make in messages:
            data = make(s.getsockname()[1], replies) if callable(make) else make
            s.sendto(data, ("127.0.0.1", port))
            deadline = reactor.seconds() + timeout
            while True:
                try:
                    text = s.recv(65535).decode()
                except BlockingIOError:
                    if reactor.seconds() > deadline:
                        raise AssertionError(f"no SIP reply within {timeout} s") from None
                    await task.deferLater(reactor, 0.02, lambda: None)
                    continue
                if not text.startswith("SIP/2.0 1"):
                    replies.append(text)
                    break
    return replies


def _options(kam_port: int, local_port: int) -> bytes:
    return (
        f"OPTIONS sip:127.0.0.1:{kam_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:keepalive@127.0.0.1>;tag=ka1\r\n"
        f"To: <sip:127.0.0.1:{kam_port}>\r\n"
        f"Call-ID: {uuid.uuid4().hex}@127.0.0.1\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class KamailioLifecycleTests(unittest.TestCase):
    timeout = 60

    async def test_start_and_stop_cleanly(self) -> None:
        kam = Kamailio()
        self.addCleanup(kam.stop)
        await kam.start()
        self.assertTrue(kam.running)
        pgid = kam.pid
        self.assertGreater(len(_group_members(pgid)), 1, "Kamailio forks its workers")
        self.assertFalse(_port_free(kam.port), "SIP port should be bound while running")
        self.assertIn(f"udp: 127.0.0.1 [127.0.0.1]:{kam.port}", kam.log_text())

        await kam.stop()
        self.assertFalse(kam.running)
        self.assertEqual(_group_members(pgid), [])
        self.assertTrue(_port_free(kam.port), "SIP port still bound after stop")
        await kam.stop()  # idempotent
        self.assertFalse(os.path.exists(kam.rundir), "own run dir is removed")
        self.assertIn("Listening on", kam.log_text(), "log survives the run dir")

    async def test_answers_options_keepalive(self) -> None:
        kam = Kamailio()
        self.addCleanup(kam.stop)
        await kam.start()
        (reply,) = await _udp_exchange(kam.port, [lambda lp, _: _options(kam.port, lp)])
        self.assertTrue(reply.startswith("SIP/2.0 200 "), reply.splitlines()[0])

    async def test_no_bindings_at_start(self) -> None:
        kam = Kamailio()
        self.addCleanup(kam.stop)
        await kam.start()
        self.assertEqual(await kam.bindings(), [])
        self.assertEqual(await kam.bindings("1001"), [])

    async def test_start_failure_reports_log_tail(self) -> None:
        port = free_port()
        blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", port))
        kam = Kamailio(port=port)
        self.addCleanup(kam.stop)
        with self.assertRaises(KamailioError) as caught:
            await kam.start()
        self.assertIn("log tail", str(caught.exception))
        self.assertFalse(kam.running)


def _digest_register(kam_port: int, user: str, password: str):
    """Two messages: REGISTER, then REGISTER with the digest answer to the 401 (RFC 2617,
    qop-less MD5 as Kamailio accepts it).  Returns builders for _udp_exchange."""
    call_id = f"{uuid.uuid4().hex}@127.0.0.1"
    uri = f"sip:127.0.0.1:{kam_port}"

    def message(local_port: int, cseq: int, extra: str = "") -> bytes:
        return (
            f"REGISTER {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:{user}@127.0.0.1>;tag=r{cseq}\r\n"
            f"To: <sip:{user}@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} REGISTER\r\n"
            f"Contact: <sip:{user}@127.0.0.1:{local_port}>\r\n"
            "Expires: 120\r\n"
            "User-Agent: harness-test\r\n"
            f"{extra}Content-Length: 0\r\n\r\n"
        ).encode()

    def first(local_port: int, replies: list[str]) -> bytes:
        return message(local_port, 1)

    def second(local_port: int, replies: list[str]) -> bytes:
        challenge = replies[-1]
        realm = re.search(r'realm="([^"]+)"', challenge).group(1)
        nonce = re.search(r'nonce="([^"]+)"', challenge).group(1)
        ha1 = hashlib.md5(f"{user}:{realm}:{password}".encode()).hexdigest()
        ha2 = hashlib.md5(f"REGISTER:{uri}".encode()).hexdigest()
        response = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
        auth = (
            f'Authorization: Digest username="{user}", realm="{realm}", nonce="{nonce}", '
            f'uri="{uri}", response="{response}", algorithm=MD5\r\n'
        )
        return message(local_port, 2, auth)

    return call_id, [first, second]


class KamailioBindingsTests(unittest.TestCase):
    timeout = 60

    async def test_bindings_after_register(self) -> None:
        kam = Kamailio()
        self.addCleanup(kam.stop)
        await kam.start()
        call_id, messages = _digest_register(kam.port, "1001", "pass1001")
        challenge, ok = await _udp_exchange(kam.port, messages)
        self.assertTrue(challenge.startswith("SIP/2.0 401 "), challenge.splitlines()[0])
        self.assertTrue(ok.startswith("SIP/2.0 200 "), ok.splitlines()[0])

        rows = await kam.bindings("1001")
        self.assertEqual(len(rows), 1, rows)
        row = rows[0]
        self.assertEqual(row["user"], "1001")
        self.assertRegex(row["contact"], r"^sip:1001@127\.0\.0\.1:\d+$")
        self.assertEqual(row["callid"], call_id)
        self.assertEqual(row["user_agent"], "harness-test")
        self.assertIsInstance(row["expires"], int)
        self.assertTrue(100 <= row["expires"] <= 120, row["expires"])
        self.assertEqual(await kam.bindings("1002"), [])
        self.assertEqual(len(await kam.bindings()), 1)

    async def test_wrong_password_is_refused(self) -> None:
        kam = Kamailio(users={"2001": "right"})
        self.addCleanup(kam.stop)
        await kam.start()
        _, messages = _digest_register(kam.port, "2001", "wrong")
        first, second = await _udp_exchange(kam.port, messages)
        self.assertTrue(second.startswith("SIP/2.0 401 "), second.splitlines()[0])
        self.assertEqual(await kam.bindings(), [])


_SAMPLE_UL_DUMP = """{
\tDomains: {
\t\tDomain: {
\t\t\tDomain: location
\t\t\tSize: 1024
\t\t\tAoRs: {
\t\t\t\tInfo: {
\t\t\t\t\tAoR: 1002
\t\t\t\t\tHashID: 924766745
\t\t\t\t\tContacts: {
\t\t\t\t\t\tContact: {
\t\t\t\t\t\t\tAddress: sip:1002@127.0.0.1:54806
\t\t\t\t\t\t\tExpires: 300
\t\t\t\t\t\t\tQ: -1
\t\t\t\t\t\t\tCall-ID: e1999333059a@test
\t\t\t\t\t\t\tCSeq: 2
\t\t\t\t\t\t\tUser-Agent: n/a
\t\t\t\t\t\t\tReceived: [not set]
\t\t\t\t\t\t\tState: CS_NEW
\t\t\t\t\t\t\tSocket: udp:127.0.0.1:25060
\t\t\t\t\t\t}
\t\t\t\t\t\tContact: {
\t\t\t\t\t\t\tAddress: sip:1002@127.0.0.1:5070;transport=tcp
\t\t\t\t\t\t\tExpires: permanent
\t\t\t\t\t\t\tCall-ID: other@test
\t\t\t\t\t\t\tCSeq: 7
\t\t\t\t\t\t\tUser-Agent: baresip v1.0.0 (x86_64/linux)
\t\t\t\t\t\t}
\t\t\t\t\t}
\t\t\t\t}
\t\t\t\tInfo: {
\t\t\t\t\tAoR: 1001
\t\t\t\t\tContacts: {
\t\t\t\t\t\tContact: {
\t\t\t\t\t\t\tAddress: sip:1001@127.0.0.1:45299
\t\t\t\t\t\t\tExpires: 299
\t\t\t\t\t\t\tCall-ID: 3f87b8957ab8@test
\t\t\t\t\t\t\tCSeq: 2
\t\t\t\t\t\t}
\t\t\t\t\t}
\t\t\t\t}
\t\t\t}
\t\t\tStats: {
\t\t\t\tRecords: 2
\t\t\t\tMax-Slots: 1
\t\t\t}
\t\t}
\t}
}"""


class UlDumpParserTests(unittest.TestCase):
    """The parser against kamcmd 5.6 output captured from a real run (no process needed)."""

    def test_parses_every_contact(self) -> None:
        rows = parse_ul_dump(_SAMPLE_UL_DUMP)
        self.assertEqual([(r["user"], r["contact"]) for r in rows], [
            ("1002", "sip:1002@127.0.0.1:54806"),
            ("1002", "sip:1002@127.0.0.1:5070;transport=tcp"),
            ("1001", "sip:1001@127.0.0.1:45299"),
        ])
        self.assertEqual(rows[0]["expires"], 300)
        self.assertEqual(rows[1]["expires"], "permanent")
        self.assertEqual(rows[1]["user_agent"], "baresip v1.0.0 (x86_64/linux)")
        self.assertEqual(rows[0]["callid"], "e1999333059a@test")
        self.assertEqual(rows[2]["cseq"], 2)

    def test_empty_dump(self) -> None:
        empty = "{\n\tDomains: {\n\t\tDomain: {\n\t\t\tDomain: location\n\t\t\tAoRs: {\n\t\t\t}\n\t\t}\n\t}\n}"
        self.assertEqual(parse_ul_dump(empty), [])
