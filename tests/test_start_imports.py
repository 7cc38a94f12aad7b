"""What starting the gateway imports (issue 19, idle memory): the twistd plugin builds the
service with the default config in a fresh interpreter, and the modules a relaying gateway
never needs must not be there.  numpy alone is ~10 MiB of RSS; the codecs, the transcoder, the
WAV code and the test lines' tone generators import it when a call needs them
(docs/performance.md, "Lever: lazy imports").

To keep another module out of the start path, add it to ``FORBIDDEN``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from wcsgw.media.audiocodec import CodecError, make_codec
from wcsgw.media.codeclibs import LIBRARIES, available

REPO = Path(__file__).resolve().parent.parent

#: top-level packages the start path must not import: numpy and opuslib (the codecs'), aiortc
#: and PyAV (the gateway has its own DTLS transport), the PostgreSQL driver (records on SQLite
#: by default) and redis (only with ``[cluster] redis_url``)
FORBIDDEN = frozenset({"numpy", "opuslib", "aiortc", "av", "psycopg", "redis"})

#: the plugin's own steps, as twistd takes them: import (installs the asyncio reactor), parse
#: the options (loads the config: none given, the defaults), make the service
_BUILD = """
    import importlib.util, json, sys
    spec = importlib.util.spec_from_file_location("wcsgw_plugin", sys.argv[1])
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    options = plugin.Options()
    options.parseOptions([])
    service = plugin.serviceMaker.makeService(options)
    assert service.call_gateway is not None
    print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


class StartImportsTests(SynchronousTestCase):
    def test_the_start_path_imports_nothing_forbidden(self) -> None:
        with tempfile.TemporaryDirectory(prefix="wcsgw-start-") as folder:  # the state folder
            proc = subprocess.run(
                [sys.executable, "-c", textwrap.dedent(_BUILD), str(REPO / "plugins" / "wcsgw_plugin.py")],
                capture_output=True, text=True, timeout=300, cwd=folder,
                env=dict(os.environ, PYTHONPATH=str(REPO)),
            )
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        imported = set(json.loads(proc.stdout.strip().splitlines()[-1]))
        self.assertIn("wcsgw", imported)  # the build ran
        self.assertEqual(sorted(imported & FORBIDDEN), [])


class CodecLibrariesTests(SynchronousTestCase):
    """codeclibs.available() answers without building codecs; it must say what building them
    says, or the start-up checks and the codec plan would promise codecs that fail."""

    def test_available_agrees_with_building_each_codec(self) -> None:
        built = []
        for key in LIBRARIES:
            try:
                make_codec(key).close()
            except CodecError:
                continue
            built.append(key)
        self.assertEqual(list(available()), built)

    def test_the_table_names_every_codec_make_codec_knows(self) -> None:
        from wcsgw.media import audiocodec

        self.assertEqual(list(LIBRARIES), list(audiocodec._FACTORIES))
