"""The start-up banner: where the running gateway can be reached, logged once it listens.

Why here and not in ``make run``: only the gateway knows the truth — the configured
``[http]``/``[sip]``/``[media]`` values, HTTPS when ``[http] tls_cert`` is set, and the port
the kernel picked when 0 was asked — so its log is the one source of these addresses.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger

from wcsgw.config import Config

__all__ = ["banner_lines", "log_banner"]

log = Logger(namespace="wcsgw")


def _host(host: str) -> str:
    """A host for a URL: a wildcard becomes the loopback a local browser can open (the
    operator knows their other addresses); IPv6 literals get their brackets."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"[{host}]" if ":" in host else host


def banner_lines(config: Config, http_port: int, sip_port: int, sip_tls_port: int) -> list[str]:
    """The lines, from the config and the ports actually bound (pure, for the tests)."""
    scheme = "https" if config.http.tls else "http"
    base = f"{scheme}://{_host(config.http.listen)}:{http_port}"
    sip = config.sip
    tls = f", TLS {_host(sip.listen)}:{sip_tls_port}" if sip_tls_port else ""
    media = config.media
    browser = (f", browser legs on UDP+TCP {media.browser_port}" if media.browser_port
               else "")
    return [
        f"Phone UI: {base}/",
        f"admin page: {base}/admin",
        f"SIP: {_host(sip.listen)}:{sip_port} (UDP+TCP){tls}",
        f"media: {media.listen} UDP ports {media.port_min}-{media.port_max}{browser}",
    ]


def log_banner(config: Config, services: Any) -> None:
    """Log :func:`banner_lines` for the started services (``http`` and ``sip`` by name; the
    configured ports where one is missing, e.g. a test's stand-in SIP endpoint)."""
    http = _named(services, "http")
    address = getattr(http, "address", None)
    http_port = address[1] if address else config.http.port
    transport = getattr(_named(services, "sip"), "transport", None)
    sip_port = getattr(transport, "port", config.sip.port)
    tls_port = getattr(transport, "tls_port", config.sip.tls_port)
    for line in banner_lines(config, http_port, sip_port, tls_port):
        log.info("{line}", line=line)


def _named(services: Any, name: str) -> Any:
    try:
        return services.getServiceNamed(name)
    except KeyError:
        return None
