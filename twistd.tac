"""``twistd -ny twistd.tac``: run the gateway from a config file, without the plugin.

The config file is ``$WCSGW_CONFIG`` when set, else ``./wcsgw.toml`` when it exists, else the
built-in defaults (see docs/configuration.md).  Logs go to standard output, filtered at
``[log] level``, in ``[log] format`` (use the plugin form, ``twistd -n wcsgw --config PATH``, for --logfile/--syslog).

The asyncio reactor is installed first, before anything imports the reactor: twistd has not
imported one when it reads a .tac file, and the gateway needs Twisted and asyncio on one loop.
"""

import os
import sys

from wcsgw.loop import ReactorMismatchError, install_asyncio_reactor

try:
    install_asyncio_reactor()
except ReactorMismatchError as e:
    raise SystemExit(f"wcsgw: {e}") from None

from twisted.application.service import Application  # noqa: E402

from wcsgw.config import CONFIG_PATH_ENV, ConfigError, load_config  # noqa: E402
from wcsgw.service import make_log_observer, make_service  # noqa: E402

_path = os.environ.get(CONFIG_PATH_ENV) or ("wcsgw.toml" if os.path.exists("wcsgw.toml") else None)
try:
    _config = load_config(_path)
except ConfigError as e:
    # SystemExit, not the ConfigError: twistd turns other exceptions from a .tac into a
    # traceback, and a config mistake deserves one line.
    raise SystemExit(f"wcsgw: config error: {e}") from None

application = Application("wcsgw")
try:
    _service = make_service(_config, log_observer=make_log_observer(
        _config.log.level, sys.stdout, _config.log.format))
except ConfigError as e:  # found at build time, e.g. a codec library missing
    raise SystemExit(f"wcsgw: config error: {e}") from None
_service.setServiceParent(application)
