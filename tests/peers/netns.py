"""Network namespaces for tests: a small real network built and always removed by the suite.

Usage inside a trial test (as root, in the test's own network namespace — ``tests/isolated``
gives every run a fresh one with only loopback)::

    skip = netns_unavailable()            # a reason, or None
    net = Network()                       # names unique to this process and test
    self.addCleanup(net.close)            # first cleanup added: runs last, after the peers
    browser, nat = net.namespace("browser"), net.namespace("nat")
    net.link(browser, "eth0", "10.77.0.2/24", nat, "lan", "10.77.0.1/24")
    net.link(nat, "wan", "203.0.113.2/24", None, f"pub{net.tag}", "203.0.113.1/24")  # ours
    net.route(browser, "default", "10.77.0.1")
    net.masquerade(nat, "wan")            # the router forwards and masquerades out of "wan"
    net.drop_udp(browser)                 # the browser's firewall lets no UDP through
    proc = browser.popen(["python3", "-c", "..."])   # its own process group, in "browser"

Why the test process's own namespace plays the gateway's host: the gateway runs in this
process (as in every end-to-end test), so its interfaces are veth ends left here; the other
hosts (browser, NAT router, PBX) are named namespaces (``ip netns add``) their programs run in
through ``ip netns exec``.  Nothing here touches an interface it did not create: the veth pairs
are created in the test's namespace and their far ends moved away.  Refusing to run in a
namespace with interfaces of its own (a machine's, with eth0 ...) keeps addresses and routes
off a developer's host.  Names
of our interfaces carry :attr:`Network.tag` (the pid and a serial), but the addresses given
them are the test's: two networks built in one namespace at the same time (trial -j workers
under one tests/isolated) would need different subnets.

Cleanup (:meth:`Network.close`) kills whatever still runs in our namespaces (a leftover is
reported as an error: a peer's own stop should have ended it), deletes the veth pairs and the
namespaces, and checks ``ip netns list`` and ``ip link`` show none of them.  Names carry the
pid, so namespaces left by a killed run are recognised and removed by the next one.

:class:`Tap` records every IPv4 packet crossing one of our interfaces (an AF_PACKET socket, no
tcpdump): what a peer on that wire could have seen.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

from twisted.internet.endpoints import TCP4ClientEndpoint

from tests.peers.baresip import Baresip, _CtrlFactory, write_tone
from tests.peers.kamailio import Kamailio

__all__ = [
    "BaresipIn",
    "KamailioIn",
    "Namespace",
    "Network",
    "NetnsError",
    "Packet",
    "Tap",
    "chromium_in",
    "netns_unavailable",
    "network_for",
    "tone_phone_in",
]

PREFIX = "wcsgw-t"
_NAME = re.compile(rf"^{re.escape(PREFIX)}(\d+)-\d+-")
_serial = itertools.count(1)
COMMAND_TIMEOUT = 20.0


class NetnsError(RuntimeError):
    """A step of building or removing the network failed; says which command and why."""


def _run(argv: Sequence[str], stdin: str | None = None, check: bool = True) -> str:
    try:
        done = subprocess.run(list(argv), input=stdin, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"{' '.join(argv)}: {exc}") from exc
    if check and done.returncode != 0:
        raise NetnsError(f"{' '.join(argv)} (exit {done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()}" + (f"\n{stdin}" if stdin else ""))
    return done.stdout


#: local veth ends of this process's open networks (see :func:`foreign_interfaces`)
_ours: set[str] = set()


def foreign_interfaces() -> list[str]:
    """Interfaces of the test's namespace other than loopback and our own veth ends.  Under
    tests/isolated there are none; on a machine's own namespace there are its real ones
    (eth0 ...), where this harness must not add addresses and routes.  (Comparing with PID
    1's namespace is not enough: a sandbox may not let even root read /proc/1/ns/net.)"""
    return [name for _, name in socket.if_nameindex() if name != "lo" and name not in _ours]


def netns_unavailable() -> str | None:
    """Why these tests cannot build their network here (a skip reason), or None.  CI runs as
    root under tests/isolated with iproute2 and iptables installed (make test), so there
    this is None and the tests run."""
    if os.geteuid() != 0:
        return "network namespace tests need root (CI runs them as root)"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            return f"{tool} not found: install Debian's {'iproute2' if tool == 'ip' else tool}"
    foreign = foreign_interfaces()
    if foreign:
        return (f"this network namespace has interfaces ({', '.join(foreign)}): refusing to "
                "add addresses and routes beside them; run under tests/isolated (make test does)")
    return None



def network_for(case: Any) -> "Network":
    """A :class:`Network` for the trial test ``case``, removed at its clean-up: the first
    cleanup the test adds, so it runs last, after every peer started in it has stopped.
    SkipTest where this machine cannot build one (:func:`netns_unavailable`)."""
    from twisted.trial import unittest

    reason = netns_unavailable()
    if reason:
        raise unittest.SkipTest(reason)
    net = Network()
    case.addCleanup(net.close)
    return net

def _base36(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[digit] + digits
        if not number:
            return digits


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _netns_names() -> list[str]:
    return [line.split()[0] for line in _run(["ip", "netns", "list"]).splitlines() if line.strip()]


def remove_stale() -> list[str]:
    """Delete namespaces a killed run of this harness left (their pid is gone); their names."""
    stale = []
    for name in _netns_names():
        match = _NAME.match(name)
        if match and int(match.group(1)) != os.getpid() and not _pid_alive(int(match.group(1))):
            _kill_inside(name)
            _run(["ip", "netns", "del", name], check=False)
            stale.append(name)
    return stale


def _kill_inside(name: str) -> list[int]:
    """SIGKILL every process still running in namespace ``name``; their pids."""
    pids = [int(p) for p in _run(["ip", "netns", "pids", name], check=False).split()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


class Namespace:
    """One named network namespace (a host of the test network)."""

    def __init__(self, name: str, role: str) -> None:
        self.name = name
        self.role = role

    def argv(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], check: bool = True) -> str:
        """Run a short command inside (blocking: for set-up steps that take milliseconds)."""
        return _run(self.argv(argv), check=check)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside, in its own session and process group (stop it with
        ``tests.peers.process.stop_group``)."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(self.argv(argv), start_new_session=True, **kwargs)

    def __repr__(self) -> str:
        return f"Namespace({self.role!r}: {self.name})"


class Network:
    """Namespaces, veth pairs, addresses, routes and firewall rules built for one test."""

    def __init__(self) -> None:
        remove_stale()
        self.serial = next(_serial)
        #: short and unique to this process and network: for interface names in the test's
        #: namespace, which other processes (trial -j workers) may share
        self.tag = _base36(os.getpid()) + _base36(self.serial)
        self.namespaces: list[Namespace] = []
        self.local_links: list[str] = []  # veth ends left in the test's namespace
        self._pairs = itertools.count(1)
        self.closed = False

    def namespace(self, role: str) -> Namespace:
        """A new namespace with loopback up, for the host playing ``role``."""
        ns = Namespace(f"{PREFIX}{os.getpid()}-{self.serial}-{role}", role)
        _run(["ip", "netns", "add", ns.name])
        self.namespaces.append(ns)
        _run(["ip", "-n", ns.name, "link", "set", "lo", "up"])
        return ns

    def link(self, a: Namespace | None, a_name: str, a_address: str,
             b: Namespace | None, b_name: str, b_address: str) -> None:
        """A veth pair: end ``a_name`` with ``a_address`` (CIDR) in ``a``, the other in ``b``
        (None: the test's own namespace, where names must be unique: the gateway's side)."""
        n = next(self._pairs)
        temp_a, temp_b = f"v{self.tag}x{n}a", f"v{self.tag}x{n}b"  # within IFNAMSIZ
        commands = [f"link add {temp_a} type veth peer name {temp_b}"]
        for ns, temp, name, address in ((a, temp_a, a_name, a_address),
                                        (b, temp_b, b_name, b_address)):
            if ns is None:
                self.local_links.append(name)
                _ours.add(name)
                commands += [f"link set {temp} name {name}", f"address add {address} dev {name}",
                             f"link set {name} up"]
            else:
                commands.append(f"link set {temp} netns {ns.name}")
        _run(["ip", "-batch", "-"], stdin="\n".join(commands) + "\n")
        for ns, temp, name, address in ((a, temp_a, a_name, a_address),
                                        (b, temp_b, b_name, b_address)):
            if ns is not None:
                _run(["ip", "-n", ns.name, "-batch", "-"], stdin=(
                    f"link set {temp} name {name}\naddress add {address} dev {name}\n"
                    f"link set {name} up\n"))

    def route(self, ns: Namespace | None, destination: str, via: str) -> None:
        """A route in ``ns`` (None: the test's namespace): ``destination`` ("default" or a
        CIDR) through the gateway address ``via``."""
        _run(["ip", *(["-n", ns.name] if ns else []), "route", "add", destination, "via", via])

    def masquerade(self, router: Namespace, outside: str, random_ports: bool = True) -> None:
        """``router`` forwards and masquerades what leaves through ``outside``: the hosts
        behind it share its address there.  ``random_ports``: new source ports as well
        (``--random-fully``), so a peer cannot reach a host behind by the port in its host
        candidate — only by the address and port it saw packets come from."""
        # /proc/sys/net is the writer's namespace's (no procps needed for sysctl)
        router.run(["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])
        router.run(["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", outside, "-j",
                    "MASQUERADE", *(["--random-fully"] if random_ports else [])])

    def drop_udp(self, ns: Namespace) -> None:
        """No UDP in or out of ``ns`` (a firewall that lets only TCP through)."""
        for chain in ("INPUT", "OUTPUT"):
            ns.run(["iptables", "-A", chain, "-p", "udp", "-j", "DROP"])

    def leftovers(self) -> list[str]:
        """Our namespaces and local veth ends that still exist."""
        names = {ns.name for ns in self.namespaces}
        left = [name for name in _netns_names() if name in names]
        links = _run(["ip", "-o", "link", "show"])
        left += [name for name in self.local_links if re.search(rf"^\d+: {re.escape(name)}[@:]",
                                                                links, re.M)]
        return left

    def close(self) -> None:
        """Remove everything built; raise NetnsError when a process was still running in one
        of our namespaces (it was killed) or something could not be removed."""
        if self.closed:
            return
        self.closed = True
        survivors = {ns.role: pids for ns in self.namespaces if (pids := _kill_inside(ns.name))}
        for name in self.local_links:  # deleting one end removes the pair at once
            _run(["ip", "link", "del", name], check=False)
            _ours.discard(name)
        for ns in self.namespaces:
            _run(["ip", "netns", "del", ns.name], check=False)
        left = self.leftovers()
        if survivors or left:
            raise NetnsError(f"processes left running (killed): {survivors}; "
                             f"not removed: {left}")


def chromium_in(ns: Namespace, folder: str | os.PathLike[str],
                chromium: str = "/usr/bin/chromium") -> str:
    """A wrapper script that runs Chromium inside ``ns``: give it to
    ``tests.peers.chromium.Chromium(executable=...)``.  Playwright talks to the browser over
    pipes, which cross namespaces; the browser's network is the namespace's."""
    path = Path(folder) / f"chromium-{ns.role}"
    path.write_text(f'#!/bin/sh\nexec ip netns exec {ns.name} {chromium} "$@"\n')
    path.chmod(0o755)
    return str(path)


class Packet(NamedTuple):
    """One IPv4 packet seen on a tapped interface (UDP/TCP ports 0 for other protocols)."""

    outgoing: bool
    protocol: int
    src: str
    sport: int
    dst: str
    dport: int
    payload: bytes


ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
SOL_PACKET = 263
PACKET_STATISTICS = 6
PACKET_OUTGOING = 4


def parse_frame(frame: bytes, outgoing: bool) -> Packet | None:
    """An Ethernet frame's IPv4 packet, or None for anything else."""
    if len(frame) < 34 or struct.unpack("!H", frame[12:14])[0] != ETH_P_IP:
        return None
    ip = frame[14:]
    header = (ip[0] & 0x0F) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    protocol = ip[9]
    src, dst = socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
    body = ip[header:total]
    sport = dport = 0
    if protocol == socket.IPPROTO_UDP and len(body) >= 8:
        sport, dport = struct.unpack("!HH", body[:4])
        body = body[8:]
    elif protocol == socket.IPPROTO_TCP and len(body) >= 20:
        sport, dport = struct.unpack("!HH", body[:4])
        body = body[(body[12] >> 4) * 4:]
    return Packet(outgoing, protocol, src, sport, dst, dport, bytes(body))


class Tap:
    """Every IPv4 packet in and out of one interface of the test's namespace, read as it
    comes by the reactor.  :attr:`dropped` (the kernel's count of packets the socket lost)
    must be 0 for "never seen on this wire" to mean anything."""

    def __init__(self, interface: str, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default

            reactor = default
        self.interface = interface
        self.reactor = reactor
        self.packets: list[Packet] = []
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE: 16 MiB
        self.sock.bind((interface, 0))
        self.sock.setblocking(False)
        self._dropped = 0
        reactor.addReader(self)

    def fileno(self) -> int:
        return self.sock.fileno()

    def logPrefix(self) -> str:  # noqa: N802 (Twisted API)
        return f"Tap({self.interface})"

    def doRead(self) -> None:  # noqa: N802
        while True:
            try:
                frame, address = self.sock.recvfrom(65535)
            except BlockingIOError:
                return
            packet = parse_frame(frame, address[2] == PACKET_OUTGOING)
            if packet is not None:
                self.packets.append(packet)

    def connectionLost(self, reason: Any) -> None:  # noqa: N802
        pass

    @property
    def dropped(self) -> int:
        """Packets the kernel could not queue for us so far (reading resets its counter)."""
        if self.sock.fileno() >= 0:
            _packets, drops = struct.unpack("II", self.sock.getsockopt(SOL_PACKET,
                                                                       PACKET_STATISTICS, 8))
            self._dropped += drops
        return self._dropped

    def close(self) -> None:
        if self.sock.fileno() >= 0:
            self.doRead()
            _ = self.dropped
            self.reactor.removeReader(self)
            self.sock.close()

    def containing(self, needle: bytes, *, skip_ports: Sequence[int] = ()) -> Iterator[Packet]:
        """Packets whose payload holds ``needle`` (ports in ``skip_ports``, on either side,
        are not looked at: a test's own control connection)."""
        for packet in self.packets:
            if packet.sport in skip_ports or packet.dport in skip_ports:
                continue
            if needle in packet.payload:
                yield packet


# -- the suite's peers inside a namespace ------------------------------------------------------
# tests/peers/kamailio.py and baresip.py run their peer on 127.0.0.1; these run the same
# configuration on a namespace's address instead, through `ip netns exec`.


class KamailioIn(Kamailio):
    """:class:`~tests.peers.kamailio.Kamailio` inside ``ns``, on ``address`` (its listen and
    alias lines name that address instead of 127.0.0.1; the domain is ``address``).  kamcmd
    still works from here: its control socket is a file."""

    def __init__(self, ns: Namespace, address: str, **options: Any) -> None:
        super().__init__(**options)
        self.ns = ns
        self.address = address

    def _write_config(self) -> Path:
        cfg = super()._write_config()
        cfg.write_text(cfg.read_text().replace("127.0.0.1", self.address))
        return cfg

    def command(self) -> list[str]:
        return self.ns.argv(super().command())


class BaresipIn(Baresip):
    """:class:`~tests.peers.baresip.Baresip` inside ``ns`` on ``address`` (SIP, RTP and its
    ctrl_tcp socket, which the test reaches across the network: skip ``ctrl_port`` when
    looking at what crossed the wire)."""

    def __init__(self, ns: Namespace, address: str, user: str, password: str = "",
                 **options: Any) -> None:
        options.setdefault("registrar_host", address)
        super().__init__(user, password, **options)
        self.ns = ns
        self.address = address

    @property
    def contact(self) -> str:
        return f"sip:{self.user}@{self.address}:{self.sip_port}"

    def write_config(self) -> None:
        super().write_config()
        for name in ("config", "accounts"):
            path = self.dir / name
            path.write_text(path.read_text().replace("127.0.0.1", self.address))

    def command_line(self) -> list[str]:
        return self.ns.argv(super().command_line())

    async def _try_ctrl(self, reactor: Any) -> bool:
        endpoint = TCP4ClientEndpoint(reactor, self.address, self.ctrl_port, timeout=1)
        try:
            self._ctrl = await endpoint.connect(_CtrlFactory(self))
            return True
        except Exception:
            return False


async def tone_phone_in(case: Any, ns: Namespace, address: str, registrar_port: int) -> BaresipIn:
    """Phone 1002 in ``ns``, registered through the Kamailio on ``address:registrar_port``,
    its microphone a 1 kHz tone, PCMU only: the far end of the namespace tests.  Stopped at
    ``case``'s clean-up (added after the PBX's, so it runs first)."""
    tone = write_tone(Path(case.mktemp()).absolute().with_suffix(".wav"), frequency=1000.0,
                      rate=8000, seconds=30.0)
    phone = BaresipIn(ns, address, "1002", "pass1002", registrar_port=registrar_port,
                      outbound=True, tone=tone, codecs="PCMU", ausrc_srate=8000,
                      ausrc_channels=1)
    case.addCleanup(phone.stop)
    await phone.start()
    await phone.registered()
    return phone

def scratch_folder(prefix: str = "wcsgw-net-") -> str:
    """A short folder for wrapper scripts (removed by the caller)."""
    return tempfile.mkdtemp(prefix=prefix)
