"""twistd plugin: ``twistd -n wcsgw [--config PATH]`` runs the gateway.

Installed into ``twisted/plugins/`` by ``pip install .`` (setup.cfg maps this folder to the
``twisted.plugins`` package).  twistd imports every plugin module to list its subcommands, which
happens before anything imports the reactor; that is the moment to install the asyncio reactor,
because the gateway's WebRTC side (aiortc/aioice) needs Twisted and asyncio on one loop and
twistd would otherwise install its platform default.  When a reactor is already there (another
tool imported this module, or ``--reactor=...`` was given) the choice is checked instead, at
option parsing, with a one-line error if it is not the asyncio reactor.

Everything else is imported lazily, so ``twistd --help`` and other plugins stay cheap and never
break because of the gateway.
"""

from __future__ import annotations

import sys
from typing import IO, Any

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin
from twisted.python import usage
from zope.interface import implementer

if "twisted.internet.reactor" not in sys.modules and "twisted.trial" not in sys.modules:
    # Not under trial: trial chooses its reactor with --reactor, and may import plugin modules
    # (to refresh its plugin cache) before handling that option.
    try:
        from wcsgw.loop import install_asyncio_reactor

        install_asyncio_reactor()
    except Exception:  # pragma: no cover - reported by _check_reactor at option parsing
        pass


def _fail(message: str) -> SystemExit:
    """twistd prints its whole --help text before a UsageError; a bad config deserves one line.
    SystemExit with a string prints just that line on stderr and exits with status 1."""
    return SystemExit(f"wcsgw: {message}")


class Options(usage.Options):
    """Command line of the ``wcsgw`` subcommand."""

    synopsis = "[--config PATH]"
    optParameters = [
        ["config", "c", None, "TOML config file (default: built-in defaults; see docs/configuration.md)"],
    ]

    def postOptions(self) -> None:
        from wcsgw.config import ConfigError, load_config
        from wcsgw.loop import ReactorMismatchError, install_asyncio_reactor

        try:
            install_asyncio_reactor()
        except ReactorMismatchError as e:
            raise _fail(str(e)) from None
        try:
            self.config = load_config(self["config"])
        except ConfigError as e:
            raise _fail(f"config error: {e}") from None


def _twistd_log_output(server_options: Any) -> IO[str] | None:
    """Where twistd would write its log, so the level-filtered observer writes there too.

    None when the user chose a custom ``--logger`` or ``--syslog``: then twistd's own choice
    stands (unfiltered).  Mirrors twistd's rules: ``--logfile=-`` or ``-n`` without a log file
    -> stdout; otherwise the named file (default ``twistd.log``)."""
    if server_options is None:
        return sys.stdout
    if server_options.get("logger") or server_options.get("syslog"):
        return None
    logfile = server_options.get("logfile") or ""
    if logfile == "-" or (not logfile and server_options.get("nodaemon")):
        return sys.stdout
    from twisted.python.logfile import LogFile

    return LogFile.fromFullPath(logfile or "twistd.log")  # type: ignore[return-value]


@implementer(IServiceMaker, IPlugin)
class WcsgwServiceMaker:
    """Builds the gateway service from the parsed ``--config``."""

    tapname = "wcsgw"
    description = "wcsgw WebRTC-to-SIP gateway (HTTP site + SIP endpoint)"
    options = Options

    def makeService(self, options: Options) -> Any:
        from wcsgw.config import ConfigError
        from wcsgw.service import make_log_observer, make_service

        output = _twistd_log_output(getattr(options, "parent", None))
        log = options.config.log
        observer = None if output is None else make_log_observer(log.level, output, log.format)
        try:
            return make_service(options.config, log_observer=observer)
        except ConfigError as e:  # found at build time, e.g. a codec library missing
            raise _fail(f"config error: {e}") from None


serviceMaker = WcsgwServiceMaker()
