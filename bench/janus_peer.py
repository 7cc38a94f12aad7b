"""Janus (Debian package ``janus``) as the side-by-side benchmark peer.

:class:`Janus` compiles the loopback shim (``bench/janus_loopback.c``, gcc) once, writes a
config folder with only the SIP plugin and the HTTP transport enabled (every other plugin,
transport, event handler and logger disabled; sessions never time out; ICE restricted to
``lo``), starts ``janus -F CONF -L LOG -o -N`` with ``LD_PRELOAD`` pointing at the shim, in its
own process group, and waits for ``GET /janus/info`` to list ``janus.plugin.sip``.

The same load caller then drives it through :class:`bench.janus_adapter.JanusSignalling`.
"""

from __future__ import annotations

import glob
import json
import os
import socket
import subprocess
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
LIBDIR = "/usr/lib/x86_64-linux-gnu/janus"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _others(kind: str, keep: str) -> str:
    names = sorted({os.path.basename(p).split(".so")[0] + ".so"
                    for p in glob.glob(os.path.join(LIBDIR, kind, "*.so*"))})
    return ",".join(n for n in names if n != keep)


def build_shim(workdir: str) -> str:
    out = os.path.join(workdir, "janus_loopback.so")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", out,
                    os.path.join(HERE, "janus_loopback.c"), "-ldl"], check=True)
    return out


def write_config(folder: str, http_port: int) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "janus.jcfg"), "w") as f:
        f.write(f"""general: {{
	configs_folder = "{folder}"
	plugins_folder = "{LIBDIR}/plugins"
	transports_folder = "{LIBDIR}/transports"
	events_folder = "{LIBDIR}/events"
	loggers_folder = "{LIBDIR}/loggers"
	debug_level = 3
	session_timeout = 0
	server_name = "wcsgw-bench"
}}
certificates: {{
}}
media: {{
	ipv6 = false
	rtp_port_range = "50000-59999"
}}
nat: {{
	ice_enforce_list = "lo"
	full_trickle = false
	nice_debug = false
}}
plugins: {{
	disable = "{_others('plugins', 'libjanus_sip.so')}"
}}
transports: {{
	disable = "{_others('transports', 'libjanus_http.so')}"
}}
loggers: {{
	disable = "{_others('loggers', '')}"
}}
events: {{
	broadcast = false
	disable = "{_others('events', '')}"
}}
""")
    with open(os.path.join(folder, "janus.plugin.sip.jcfg"), "w") as f:
        f.write("""general: {
	local_ip = "127.0.0.1"
	sdp_ip = "127.0.0.1"
	keepalive_interval = 0
	behind_nat = false
	register_ttl = 3600
	rtp_port_range = "60000-64999"
	events = false
}
""")
    with open(os.path.join(folder, "janus.transport.http.jcfg"), "w") as f:
        f.write(f"""general: {{
	events = false
	json = "compact"
	base_path = "/janus"
	http = true
	port = {http_port}
	ip = "127.0.0.1"
	https = false
}}
admin: {{
	admin_http = false
	admin_https = false
}}
cors: {{
}}
""")


class Janus:
    name = "janus"

    def __init__(self, workdir: str) -> None:
        from bench.relay_capacity import Proc

        shim = build_shim(workdir)
        folder = os.path.join(workdir, "janus-conf")
        self.http_port = _free_port()
        write_config(folder, self.http_port)
        env = dict(os.environ, LD_PRELOAD=shim)
        self.p = Proc(["janus", "-F", folder, "-L", os.path.join(workdir, "janus.log"), "-o", "-N"],
                      os.path.join(workdir, "janus.out"), env=env)
        self.pid = self.p.pid
        self.url = f"http://127.0.0.1:{self.http_port}/janus"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/info", timeout=2) as reply:
                    info = json.loads(reply.read())
                if "janus.plugin.sip" not in info.get("plugins", {}):
                    raise RuntimeError(f"Janus runs without its SIP plugin: {list(info.get('plugins', {}))}")
                break
            except OSError:
                if self.p.proc.poll() is not None or time.monotonic() > deadline:
                    self.p.stop()
                    raise RuntimeError(f"Janus did not start; see {workdir}/janus.log") from None
                time.sleep(0.2)

    def caller_args(self, echo_port: int) -> list[str]:
        return ["--adapter", "janus", "--janus-url", self.url,
                "--sip-domain", "127.0.0.1", "--sip-port", str(echo_port)]

    def stop(self) -> None:
        self.p.stop()
