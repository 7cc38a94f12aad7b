"""Issue 12, item 1: HTTPS and WSS natively (``[http] tls_cert``, ``tls_key``).

* The keys: both or neither (one alone is refused naming the other), files that cannot be used
  refused at start naming the key — in-process and as a real ``twistd`` that exits with one line.
* The context, through real handshakes of Python's own TLS client (another OpenSSL than the
  gateway's): TLS 1.2 and 1.3 with forward-secret AEAD suites only; a TLS 1.1 client (which a
  permissive server accepts, the control) and CBC or non-ECDHE suites are refused; no
  compression.
* Reload: the files replaced and the context swapped (directly, and by SIGHUP to this very
  process): new connections get the new certificate, an open connection keeps working, a
  broken renewal keeps the old certificate.
* The front door (Host allow-list, body limit, header/body deadlines) unchanged over TLS: the
  attack tests of tests/test_security_http.py run again through a TLS client.
* The Phone UI over https:// in Chromium and a call over WSS to the echo line, audio checked,
  the certificate replaced and SIGHUP sent mid-call: the call goes on, new connections see the
  new certificate (:class:`PhoneOverHttpsTests`, the gateway a real twistd process).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import threading
import warnings
from io import BytesIO
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from twisted.internet import defer, reactor, task, threads
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.trial import unittest
from twisted.web.client import (
    Agent,
    BrowserLikePolicyForHTTPS,
    FileBodyProducer,
    HTTPConnectionPool,
    readBody,
)
from twisted.web.http_headers import Headers

import tests.test_security_http as front
from tests.e2e import REMOTE_STREAM, Phone
from tests.peers.chromium import Chromium, aio, evaluate, write_tone_wav
from tests.peers.ports import free_port
from tests.peers.testca import CA, fingerprint, make_ca, spki_sha256
from tests.support import assert_near, inline
from tests.test_twistd import Gateway as TwistdGateway, TwistdTestCase, _config, _write
from wcsgw.api.listener import HttpService
from wcsgw.api.tls import ReloadingTls
from wcsgw.api.tlscontext import read_files, server_context
from wcsgw.config import Config, ConfigError, HttpSettings, load_config, parse_config
from wcsgw.service import make_service, make_site

#: Upper bound on waiting for what must happen (never what a test measures).
PATIENCE = 10.0


def tls_http(tmp: str, **http: Any) -> tuple[CA, HttpSettings]:
    """A test CA, a certificate for localhost/127.0.0.1, and [http] settings using it."""
    ca = make_ca(tmp)
    cert, key = ca.issue(["localhost", "127.0.0.1"], tmp)
    return ca, HttpSettings(listen="127.0.0.1", port=0, tls_cert=str(cert), tls_key=str(key),
                            **http)


def client_context(ca: CA, *, minimum: ssl.TLSVersion | None = None,
                   maximum: ssl.TLSVersion | None = None, ciphers: str | None = None
                   ) -> ssl.SSLContext:
    """Python's TLS client trusting only the test CA, optionally held to versions/suites."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca.cert_path)
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is the point here
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum is not None:
            ctx.minimum_version = minimum
        if maximum is not None:
            ctx.maximum_version = maximum
    if ciphers is not None:
        ctx.set_ciphers(ciphers)
    return ctx


def _fetch(port: int, ctx: ssl.SSLContext, path: str = "/health") -> dict[str, Any]:
    """Blocking (run in a thread): one HTTPS GET; what the handshake chose and the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            cipher = tls.cipher()
            seen = {"version": tls.version(), "cipher": cipher[0] if cipher else None,
                    "compression": tls.compression(),
                    "cert": fingerprint(tls.getpeercert(binary_form=True) or b"")}
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n"
                        "Connection: close\r\n\r\n".encode())
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
            return {**seen, "reply": data}


def fetch(port: int, ctx: ssl.SSLContext, path: str = "/health") -> defer.Deferred:
    return threads.deferToThread(_fetch, port, ctx, path)


class PermissiveServer:
    """The control for "the gateway refuses TLS 1.1": a stdlib server that allows it, so a
    refused handshake is the gateway's doing and not this client's inability."""

    def __init__(self, cert: str, key: str) -> None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]

        def serve() -> None:
            conn, _ = self.sock.accept()
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(65536)
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except (ssl.SSLError, OSError):
                pass
            finally:
                self.sock.close()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()


class ConfigTests(unittest.TestCase):
    def test_defaults_are_plain_http(self) -> None:
        config = parse_config({})
        self.assertEqual((config.http.tls_cert, config.http.tls_key), ("", ""))
        self.assertFalse(config.http.tls)

    def test_one_file_alone_is_refused_naming_the_other(self) -> None:
        for given, missing in (("tls_cert", "tls_key"), ("tls_key", "tls_cert")):
            with self.assertRaises(ConfigError) as caught:
                parse_config({"http": {given: "/etc/wcsgw/x.pem"}})
            self.assertEqual(caught.exception.key, f"http.{missing}")
            self.assertNotIn("\n", str(caught.exception))

    def test_both_set_means_tls_and_types_are_checked(self) -> None:
        config = parse_config({"http": {"tls_cert": "a.pem", "tls_key": "a.key"}})
        self.assertTrue(config.http.tls)
        with self.assertRaises(ConfigError) as caught:
            parse_config({"http": {"tls_cert": 1, "tls_key": "a.key"}})
        self.assertEqual(caught.exception.key, "http.tls_cert")

    def test_environment_overrides(self) -> None:
        config = load_config(None, {"WCSGW_HTTP_TLS_CERT": "/c.pem",
                                    "WCSGW_HTTP_TLS_KEY": "/c.key"})
        self.assertEqual((config.http.tls_cert, config.http.tls_key), ("/c.pem", "/c.key"))


class FilesTests(unittest.TestCase):
    """What start-up refuses, each time with one line naming the key."""

    def setUp(self) -> None:
        self.tmp = Path(self.mktemp())
        self.ca = make_ca(self.tmp)
        self.cert, self.key = self.ca.issue(["localhost"], self.tmp)

    def refused(self, cert: Path | str, key: Path | str) -> ConfigError:
        with self.assertRaises(ConfigError) as caught:
            ReloadingTls(str(cert), str(key))
        self.assertNotIn("\n", str(caught.exception))
        self.assertNotIn("PRIVATE KEY-----\n", str(caught.exception))
        return caught.exception

    def test_good_pair_loads(self) -> None:
        tls = ReloadingTls(str(self.cert), str(self.key))
        self.assertIn("CN=localhost", tls.loaded)

    def test_missing_or_unreadable_files(self) -> None:
        self.assertEqual(self.refused(self.tmp / "nope.pem", self.key).key, "http.tls_cert")
        self.assertEqual(self.refused(self.cert, self.tmp / "nope.key").key, "http.tls_key")
        # a folder: unreadable as a file even for root (CI runs as root, so chmod 000 is not)
        self.assertEqual(self.refused(self.tmp, self.key).key, "http.tls_cert")

    def test_wrong_contents(self) -> None:
        junk = self.tmp / "junk.pem"
        junk.write_text("not a certificate\n")
        self.assertEqual(self.refused(junk, self.key).key, "http.tls_cert")
        self.assertEqual(self.refused(self.key, self.key).key, "http.tls_cert")  # a key, no cert
        self.assertEqual(self.refused(self.cert, junk).key, "http.tls_key")
        self.assertEqual(self.refused(self.cert, self.cert).key, "http.tls_key")  # a cert, no key

    def test_key_of_another_certificate(self) -> None:
        _, other_key = self.ca.issue(["localhost"], self.tmp)
        error = self.refused(self.cert, other_key)
        self.assertEqual(error.key, "http.tls_key")
        self.assertIn("does not match", str(error))

    def test_encrypted_key(self) -> None:
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(self.key.read_bytes(), None)
        locked = self.tmp / "locked.key"
        locked.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret")))
        error = self.refused(self.cert, locked)
        self.assertEqual(error.key, "http.tls_key")
        self.assertIn("encrypted", str(error))

    def test_context_options(self) -> None:
        """What a handshake cannot show from this client: compression, renegotiation and
        session tickets are off in the context itself (set_options(0) reads them back)."""
        from OpenSSL import SSL

        options = server_context(*read_files(str(self.cert), str(self.key))).set_options(0)
        for name, flag in (("compression", SSL.OP_NO_COMPRESSION), ("renegotiation", 1 << 30),
                           ("tickets", SSL.OP_NO_TICKET)):
            self.assertTrue(options & flag, name)

    def test_service_build_refuses_bad_files(self) -> None:
        """make_service reads the files: a bad one is a ConfigError at build, which both start
        paths (plugin, twistd.tac) turn into one line and exit status 1."""
        config = Config(http=HttpSettings(port=0, tls_cert=str(self.tmp / "gone.pem"),
                                          tls_key=str(self.key)))
        with self.assertRaises(ConfigError) as caught:
            make_service(config)
        self.assertEqual(caught.exception.key, "http.tls_cert")


class ListenerCase(unittest.TestCase):
    """An HTTPS listener (the real HttpService and site) on a free port."""

    timeout = 60

    def start(self, **http: Any) -> None:
        self.tmp = Path(self.mktemp())
        self.ca, settings = tls_http(str(self.tmp), **http)
        self.settings = settings
        config = Config(http=settings)
        self.service = HttpService(settings, make_site(config))
        self.service.startService()
        self.addCleanup(self.service.stopService)
        address = self.service.address
        assert address is not None
        self.port = address[1]
        self.first = fingerprint(Path(settings.tls_cert).read_bytes())

    def renew(self) -> str:
        """A new certificate written over the configured files (as an ACME client does);
        its fingerprint."""
        cert, key = self.ca.issue(["localhost", "127.0.0.1"], self.tmp / "renewed")
        Path(self.settings.tls_cert).write_bytes(cert.read_bytes())
        Path(self.settings.tls_key).write_bytes(key.read_bytes())
        return fingerprint(cert.read_bytes())


class ProtocolTests(ListenerCase):
    @inline
    async def test_tls13_and_tls12_with_forward_secret_aead(self) -> None:
        self.start()
        reply = await fetch(self.port, client_context(self.ca))
        self.assertEqual(reply["version"], "TLSv1.3")
        self.assertIn(b'"status": "ok"', reply["reply"])
        self.assertEqual(reply["cert"], self.first)
        self.assertIsNone(reply["compression"])
        for suite in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                      "ECDHE-ECDSA-CHACHA20-POLY1305"):
            reply = await fetch(self.port, client_context(
                self.ca, maximum=ssl.TLSVersion.TLSv1_2, ciphers=suite))
            self.assertEqual((reply["version"], reply["cipher"]), ("TLSv1.2", suite))
            self.assertIn(b"200 OK", reply["reply"])

    @inline
    async def test_tls12_without_aead_or_forward_secrecy_is_refused(self) -> None:
        self.start()
        for suites in ("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384",  # CBC
                       "AES128-GCM-SHA256:AES256-GCM-SHA384",  # no ECDHE: no forward secrecy
                       "DHE-RSA-AES128-GCM-SHA256"):
            with self.assertRaises(ssl.SSLError, msg=suites):
                await fetch(self.port, client_context(
                    self.ca, maximum=ssl.TLSVersion.TLSv1_2, ciphers=suites))

    @inline
    async def test_tls11_client_is_refused(self) -> None:
        self.start()
        old = {"minimum": ssl.TLSVersion.TLSv1, "maximum": ssl.TLSVersion.TLSv1_1,
               "ciphers": "DEFAULT:@SECLEVEL=0"}
        control = PermissiveServer(self.settings.tls_cert, self.settings.tls_key)
        reply = await fetch(control.port, client_context(self.ca, **old))
        self.assertEqual(reply["version"], "TLSv1.1")  # this client can speak TLS 1.1 ...
        with self.assertRaises(ssl.SSLError):  # ... and the gateway will not
            await fetch(self.port, client_context(self.ca, **old))
        # and the refusal left the listener serving
        self.assertIn(b"200 OK", (await fetch(self.port, client_context(self.ca)))["reply"])


    @inline
    async def test_a_full_chain_is_served_whole(self) -> None:
        """ACME clients write fullchain.pem (the leaf, then intermediates): the gateway sends
        every certificate in it, leaf first, or clients that lack the intermediate fail."""
        self.start()
        chain = Path(self.settings.tls_cert)
        chain.write_bytes(chain.read_bytes() + self.ca.cert_path.read_bytes())
        tls = self.service.tls
        assert tls is not None
        self.assertTrue(tls.reload())

        def peer_chain() -> list[str]:
            from OpenSSL import SSL

            client = SSL.Connection(SSL.Context(SSL.TLS_CLIENT_METHOD),
                                    socket.create_connection(("127.0.0.1", self.port)))
            client.set_connect_state()
            client.set_tlsext_host_name(b"localhost")
            client.do_handshake()
            certs = client.get_peer_cert_chain(as_cryptography=True) or []
            client.close()
            return [fingerprint(c.public_bytes(Encoding.DER)) for c in certs]

        served = await threads.deferToThread(peer_chain)
        self.assertEqual(served, [self.first, fingerprint(self.ca.cert_path.read_bytes())])


class ReloadTests(ListenerCase):
    async def wait_for_cert(self, wanted: str) -> dict[str, Any]:
        deadline = reactor.seconds() + PATIENCE
        while True:
            reply = await fetch(self.port, client_context(self.ca))
            if reply["cert"] == wanted or reactor.seconds() > deadline:
                return reply
            await task.deferLater(reactor, 0.05, lambda: None)

    async def open_connection(self) -> front.RawClient:
        client = front.RawClient()
        endpoint = wrapClientTLS(
            optionsForClientTLS("localhost", trustRoot=Certificate.loadPEM(
                self.ca.cert_path.read_bytes())),
            TCP4ClientEndpoint(reactor, "127.0.0.1", self.port))
        await connectProtocol(endpoint, client)
        self.addCleanup(lambda: client.closed.called or client.transport.abortConnection())
        return client

    async def keep_alive_get(self, client: front.RawClient, n: int) -> None:
        client.send(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        await client.until(lambda data: data.count(b"HTTP/1.1 200") == n)

    @inline
    async def test_reload_swaps_the_certificate_for_new_connections(self) -> None:
        self.start(header_timeout=30.0)
        held = await self.open_connection()
        await self.keep_alive_get(held, 1)
        renewed = self.renew()
        self.assertNotEqual(renewed, self.first)
        tls = self.service.tls
        assert tls is not None
        self.assertTrue(tls.reload())
        self.assertEqual((await fetch(self.port, client_context(self.ca)))["cert"], renewed)
        # the connection opened before still works, on its old certificate
        await self.keep_alive_get(held, 2)
        self.assertFalse(held.closed.called)
        self.assertEqual(fingerprint(held.transport.getPeerCertificate().to_cryptography()
                                     .public_bytes(Encoding.DER)), self.first)

    @inline
    async def test_broken_renewal_keeps_the_old_certificate(self) -> None:
        self.start()
        Path(self.settings.tls_key).write_text("half-written\n")
        tls = self.service.tls
        assert tls is not None
        self.assertFalse(tls.reload())
        self.assertEqual((await fetch(self.port, client_context(self.ca)))["cert"], self.first)
        # the next good renewal is taken
        renewed = self.renew()
        self.assertTrue(tls.reload())
        self.assertEqual((await fetch(self.port, client_context(self.ca)))["cert"], renewed)

    @inline
    async def test_sighup_reloads(self) -> None:
        """The real signal, to this process: the service's handler reloads through the
        reactor.  Stopping the service gives SIGHUP its previous handler back."""
        before = signal.getsignal(signal.SIGHUP)
        self.start()
        self.assertNotEqual(signal.getsignal(signal.SIGHUP), before)
        renewed = self.renew()
        os.kill(os.getpid(), signal.SIGHUP)
        reply = await self.wait_for_cert(renewed)
        self.assertEqual(reply["cert"], renewed)
        await self.service.stopService()
        self.assertEqual(signal.getsignal(signal.SIGHUP), before)

    def test_plain_http_installs_no_sighup_handler(self) -> None:
        before = signal.getsignal(signal.SIGHUP)
        service = HttpService(HttpSettings(port=0), make_site(Config()))
        service.startService()
        self.addCleanup(service.stopService)
        self.assertIsNone(service.tls)
        self.assertEqual(signal.getsignal(signal.SIGHUP), before)


class TlsFrontDoor(front.FrontDoorCase):
    """The front door's attack tests, through a TLS client to an HTTPS gateway."""

    def setUp(self) -> None:
        tmp = self.mktemp()
        self.ca = make_ca(tmp)
        cert, key = self.ca.issue(["localhost", "127.0.0.1"], tmp)
        config = front.http_config(tls_cert=str(cert), tls_key=str(key))
        self.gateway = front.Gateway(config)
        self.gateway.start()
        self.addCleanup(self.gateway.stop)
        self.port = self.gateway.top.getServiceNamed("http").address[1]

    async def connect(self) -> front.RawClient:
        client = front.RawClient()
        endpoint = wrapClientTLS(
            optionsForClientTLS("localhost", trustRoot=Certificate.loadPEM(
                self.ca.cert_path.read_bytes())),
            TCP4ClientEndpoint(reactor, "127.0.0.1", self.port))
        await connectProtocol(endpoint, client)
        client.opened_at = reactor.seconds()

        def close() -> defer.Deferred:
            if not client.closed.called:
                client.transport.abortConnection()
            return client.closed

        self.addCleanup(close)
        return client


class TlsRebindingTests(TlsFrontDoor, front.RebindingTests):
    pass


class TlsBodyLimitTests(TlsFrontDoor, front.BodyLimitTests):
    @inline
    async def test_bodies_within_the_limit_still_work(self) -> None:
        """As over HTTP (the raw requests), then through an ordinary HTTPS client."""
        body = b'{"callId": "c1"' + b" " * (front.MAX_BODY - 16) + b"}"
        status, _, reply = await self.exchange(
            self.post("/rest-api/call/find", self.here, body, "Connection: close"))
        self.assertEqual(status, 404, reply)
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(pool.closeCachedConnections)
        policy = BrowserLikePolicyForHTTPS(
            trustRoot=Certificate.loadPEM(self.ca.cert_path.read_bytes()))
        response = await Agent(reactor, contextFactory=policy, pool=pool).request(
            b"POST", f"https://localhost:{self.port}/rest-api/call/find_all".encode(),
            Headers({b"content-type": [b"application/json"],
                     b"authorization": [f"Bearer {front.TOKEN}".encode()]}),
            FileBodyProducer(BytesIO(b"{}")))
        self.assertEqual((response.code, json.loads(await readBody(response))), (200, []))

    @inline
    async def test_plain_http_to_the_https_port_gets_no_answer_in_clear(self) -> None:
        client = front.RawClient()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.port), client)
        self.addCleanup(lambda: client.closed.called or client.transport.abortConnection())
        client.send(self.get("/health", self.here))
        data = await client.closed
        self.assertNotIn(b"HTTP/1.1", data)
        self.assertNotIn(b"status", data)


class TlsSlowClientTests(TlsFrontDoor, front.SlowClientTests):
    @inline
    async def test_a_silent_tls_handshake_is_closed(self) -> None:
        """A client that opens TCP and never says ClientHello holds no connection either:
        the header deadline runs from the TCP connection."""
        client = front.RawClient()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.port), client)
        opened = reactor.seconds()
        self.addCleanup(lambda: client.closed.called or client.transport.abortConnection())
        closed_at = await client.closed_within()
        self.assertGreaterEqual(closed_at - opened, front.HEADER_TIMEOUT * 0.9)
        self.assertEqual(client.data, b"")


class TwistdTlsTests(TwistdTestCase):
    @inline
    async def test_unreadable_certificate_stops_twistd_with_one_line(self) -> None:
        tmp = self.tmpdir()
        ca = make_ca(tmp)
        _, key = ca.issue(["localhost"], tmp)
        extra = f'tls_cert = "{tmp}/missing.pem"\ntls_key = "{key}"\n'
        text = _config(0, 0).replace("[http]\n", "[http]\n" + extra, 1)
        path = _write(tmp, "gw.toml", text)
        gateway = TwistdGateway(self, ["-n", "--pidfile=", "--logfile=-", "wcsgw", "--config", path])
        code = await gateway.wait_exit()
        self.assertEqual(code, 1, gateway.output)
        lines = [line for line in gateway.output.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, gateway.output)
        self.assertTrue(lines[0].startswith("wcsgw: config error: http.tls_cert: cannot read"),
                        lines[0])


class PhoneOverHttpsTests(TwistdTestCase):
    """A person on the Phone UI over https://, calling the echo line over WSS, while the
    operator renews the certificate and sends SIGHUP (the gateway a real twistd process)."""

    timeout = 180

    async def wait_https(self, gateway: TwistdGateway, port: int, ctx: ssl.SSLContext,
                         fingerprint_wanted: str | None = None) -> dict[str, Any]:
        """/health over HTTPS once it answers (with ``fingerprint_wanted``: once it answers
        with that certificate); bounded."""
        deadline = reactor.seconds() + 30.0
        last: Any = None
        while reactor.seconds() < deadline:
            if gateway.proc.poll() is not None:
                raise AssertionError(f"twistd exited:\n{gateway.output}")
            try:
                last = await fetch(port, ctx)
                if fingerprint_wanted is None or last["cert"] == fingerprint_wanted:
                    return last  # type: ignore[no-any-return]
            except (OSError, ssl.SSLError) as exc:
                last = exc
            await task.deferLater(reactor, 0.1, lambda: None)
        raise AssertionError(f"no such answer over HTTPS ({last!r}):\n{gateway.output}")

    @inline
    async def test_call_over_wss_survives_a_certificate_reload(self) -> None:
        tmp = Path(self.tmpdir())
        ca = make_ca(tmp)
        first_cert, first_key = ca.issue(["localhost", "127.0.0.1"], tmp / "first")
        next_cert, next_key = ca.issue(["localhost", "127.0.0.1"], tmp / "next")
        live_cert, live_key = tmp / "fullchain.pem", tmp / "privkey.pem"
        live_cert.write_bytes(first_cert.read_bytes())
        live_key.write_bytes(first_key.read_bytes())
        first, renewed = (fingerprint(p.read_bytes()) for p in (first_cert, next_cert))

        http_port, sip_port = free_port("tcp"), free_port("udp+tcp")
        text = _config(http_port, sip_port).replace(
            "[http]\n", f'[http]\ntls_cert = "{live_cert}"\ntls_key = "{live_key}"\n', 1)
        path = _write(str(tmp), "gw.toml", text)
        gateway = TwistdGateway(self, ["-n", "--pidfile=", "--logfile=-", "wcsgw", "--config", path])
        ctx = client_context(ca)
        self.assertEqual((await self.wait_https(gateway, http_port, ctx))["cert"], first)

        # Chromium accepts exactly these two certificates (no CA is installed in it).
        spkis = ",".join(spki_sha256(p.read_bytes()) for p in (first_cert, next_cert))
        wav = write_tone_wav(tmp / "tone440.wav", 440.0)
        browser = Chromium(fake_audio=wav,
                           extra_args=[f"--ignore-certificate-errors-spki-list={spkis}"])
        await browser.start()
        self.addCleanup(browser.stop)
        page = await browser.new_page()
        sockets: list[Any] = []
        closed: list[str] = []

        def opened(ws: Any) -> None:
            sockets.append(ws)
            ws.on("close", lambda _ws: closed.append(ws.url))

        page.on("websocket", opened)
        await aio(page.goto(f"https://127.0.0.1:{http_port}/"))
        self.assertTrue(await evaluate(page, "window.isSecureContext"))  # the microphone's rule
        phone = Phone(page)
        await phone.login()
        self.assertEqual([ws.url for ws in sockets], [f"wss://127.0.0.1:{http_port}/ws"])

        await phone.call("echo")
        await phone.wait_state("call-status", "established")
        peak = await phone.received_frequency(stream=REMOTE_STREAM)
        assert_near(self, peak["frequency"], 440, 15)
        self.assertGreater(peak["level"], -60)

        # The operator's renewal: new files over the old ones, then SIGHUP.
        live_key.write_bytes(next_key.read_bytes())
        live_cert.write_bytes(next_cert.read_bytes())
        os.kill(gateway.proc.pid, signal.SIGHUP)
        reply = await self.wait_https(gateway, http_port, ctx, fingerprint_wanted=renewed)
        self.assertIn(b"200 OK", reply["reply"])
        self.assertIn("TLS certificate reloaded", gateway.output)

        # The call went on: same WebSocket, still established, the echo still heard.
        self.assertEqual(closed, [])
        self.assertEqual(await phone.wait_state("call-status", "established"), "established")
        peak = await phone.received_frequency(stream=REMOTE_STREAM)
        assert_near(self, peak["frequency"], 440, 15)
        self.assertGreater(peak["level"], -60)
        # ... and the page's own requests still reach the site.
        health = await evaluate(page, """async () => {
            const r = await fetch('/health', {cache: 'no-store', headers: {'X-New': '1'}});
            return r.status; }""")
        self.assertEqual(health, 200)

        await phone.click("Hangup")
        await phone.wait_state("call-status", "finish")
        self.assertEqual(closed, [])
        os.killpg(gateway.proc.pid, signal.SIGTERM)
        self.assertIn(await gateway.wait_exit(), (0, -signal.SIGTERM), gateway.output)
        self.assertNotIn("Traceback", gateway.output)
