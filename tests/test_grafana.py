"""The Grafana dashboard (docs/grafana/wcsgw.json) only asks for what /metrics exports.

A dashboard that names a metric or label the gateway no longer exports shows "No data" and
nobody notices until the day it is needed.  So the test scrapes a real gateway's /metrics
(a named trunk account, so ``wcsgw_trunk_up`` has a series too) and checks every PromQL
expression of the dashboard — panels and template variables — against it: each ``wcsgw_``
name a family (or a histogram's ``_bucket``/``_sum``/``_count``), each label grouped on,
matched or shown in a legend one that the scrape carries (or Prometheus adds: ``instance``,
``job``; ``le`` of a histogram).  And the dashboard's shape: Grafana 10 JSON, a Prometheus
data-source variable every panel uses, no hard-coded data source, unique panel ids.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from io import BytesIO
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlencode

import attrs
from twisted.internet import reactor, task
from twisted.trial import unittest
from twisted.web.client import Agent, FileBodyProducer, readBody
from twisted.web.http_headers import Headers

from tests.e2e import Gateway, gateway_config
from tests.peers.chromium import write_tone_wav
from tests.peers.ports import free_port
from tests.peers.process import KeepsLog, stop_group
from tests.support import EventLog, inline
from tests.test_api_metrics import parse_exposition
from wcsgw.config import Account, RestSettings
from wcsgw.config.settings import AppSettings

DASHBOARD = Path(__file__).resolve().parent.parent / "docs" / "grafana" / "wcsgw.json"
TOKEN = "grafana-test-token"
#: labels Prometheus itself adds to every scraped series, and a histogram's bucket bound
ADDED_LABELS = {"instance", "job", "le", "__name__"}
#: PromQL words that look like label names inside by (...) / without (...)
_NAME = re.compile(r"\bwcsgw_[a-zA-Z0-9_]+")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*\"")
_LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")
_LABEL_VALUES = re.compile(r"label_values\(\s*[a-zA-Z_:][a-zA-Z0-9_:]*\s*,\s*([a-zA-Z_]+)\s*\)")


def load() -> dict[str, Any]:
    with open(DASHBOARD, encoding="utf-8") as f:
        return json.load(f)


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(where, expr, legend) of every PromQL query: panel targets and variable queries."""
    found = []
    for panel in all_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            found.append((panel["title"], target["expr"], target.get("legendFormat", "")))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found.append((f"${variable['name']}",
                          query["query"] if isinstance(query, dict) else query, ""))
    return found


def labels_used(expr: str, legend: str) -> set[str]:
    used = set(_MATCHER.findall(expr)) | set(_LEGEND.findall(legend))
    used |= set(_LABEL_VALUES.findall(expr))
    for group in _GROUPING.findall(expr):
        used |= {name.strip() for name in group.split(",") if name.strip()}
    return used


class DashboardShapeTests(unittest.TestCase):
    def test_grafana_10_dashboard_on_a_prometheus_variable(self) -> None:
        dashboard = load()
        self.assertGreaterEqual(dashboard["schemaVersion"], 38)  # Grafana 10
        self.assertEqual(dashboard["uid"], "wcsgw-overview")
        [source] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
        self.assertEqual((source["name"], source["query"]), ("datasource", "prometheus"))
        panels = list(all_panels(dashboard["panels"]))
        ids = [p["id"] for p in panels]
        self.assertEqual(len(ids), len(set(ids)))
        for panel in panels:
            if panel["type"] == "row":
                continue
            self.assertEqual(panel["datasource"], {"type": "prometheus", "uid": "${datasource}"},
                             panel["title"])
            self.assertTrue(panel["targets"], panel["title"])
            for target in panel["targets"]:
                self.assertEqual(target["datasource"]["uid"], "${datasource}")
                self.assertIn('instance=~"$instance"', target["expr"], panel["title"])
                self.assertEqual(target["expr"].count("("), target["expr"].count(")"))
            grid = panel["gridPos"]
            self.assertLessEqual(grid["x"] + grid["w"], 24, panel["title"])

    def test_covers_what_operators_watch(self) -> None:
        """The issue's list: calls by status, set-up time, media packets and loss, sessions,
        registrations, trunks, refusals, draining/overloaded, event-loop lag, CPU/RSS/fds,
        hooks."""
        text = " ".join(expr for _, expr, _ in expressions(load()))
        for name in ("wcsgw_calls", "wcsgw_calls_ended_total", "wcsgw_call_setup_seconds_bucket",
                     "wcsgw_rtp_packets_total", "wcsgw_transcoder_concealed_seconds_total",
                     "wcsgw_websocket_sessions", "wcsgw_sip_registrations", "wcsgw_trunk_up",
                     "wcsgw_limit_refusals_total", "wcsgw_draining", "wcsgw_overloaded",
                     "wcsgw_event_loop_lag_seconds", "wcsgw_process_cpu_seconds_total",
                     "wcsgw_process_resident_memory_bytes", "wcsgw_process_open_fds",
                     "wcsgw_hook_requests_total", "wcsgw_hook_notices_dropped_total"):
            self.assertRegex(text, rf"\b{name}\b")


class DashboardMatchesMetricsTests(unittest.TestCase):
    """Every name and label of the dashboard against a real gateway's /metrics."""

    timeout = 60

    async def scrape(self, gateway: Gateway) -> dict[str, Any]:
        response = await Agent(reactor).request(
            b"GET", (gateway.url + "metrics").encode(),
            Headers({b"authorization": [f"Bearer {TOKEN}".encode()]}))
        self.assertEqual(response.code, 200)
        return parse_exposition((await readBody(response)).decode("utf-8"))

    async def rest(self, gateway: Gateway, path: str, body: dict[str, Any]) -> int:
        response = await Agent(reactor).request(
            b"POST", (gateway.url + "rest-api/" + path).encode(),
            Headers({b"authorization": [f"Bearer {TOKEN}".encode()],
                     b"content-type": [b"application/json"]}),
            FileBodyProducer(BytesIO(json.dumps(body).encode())))
        await readBody(response)
        return response.code

    @inline
    async def test_every_expression_names_exported_metrics_and_labels(self) -> None:
        """Scraped idle, during a call (REST, a file played to the echo test line: the live
        calls' labels) and after it (the ended calls' labels)."""
        media = os.path.abspath(self.mktemp())
        os.makedirs(media)
        write_tone_wav(os.path.join(media, "tone.wav"), 440.0, seconds=5.0, rate=8000)
        trunk = Account(name="carrier", login="gw", password="trunk-secret", domain="127.0.0.1",
                        port=free_port("udp"), register=False, options_interval=30)
        config = attrs.evolve(gateway_config(allowed_domains=("127.0.0.1",), t1=0.1, t2=0.8),
                              rest=RestSettings(tokens=(TOKEN,), media_folder=media),
                              accounts=(trunk,),  # wcsgw_trunk_up
                              # an app of its own key, never asked here: the wcsgw_hook_* families
                              apps=(AppSettings(hook_url=f"http://127.0.0.1:{free_port('tcp')}/",
                                                secret="hook-secret", key="dashboard"),))
        gateway = Gateway(config)
        gateway.start()
        self.addCleanup(gateway.stop)
        scrapes = [await self.scrape(gateway)]
        self.assertEqual(await self.rest(gateway, "call/startup", {
            "callee": "echo", "callId": "g1", "playFile": "tone.wav"}), 200)
        statuses = EventLog()
        gateway.calls["g1"].on_status = statuses
        await statuses.wait_for(lambda described: described["status"] == "ESTABLISHED")
        scrapes.append(await self.scrape(gateway))
        self.assertEqual(await self.rest(gateway, "call/terminate", {"callId": "g1"}), 200)
        await gateway.when_idle()
        scrapes.append(await self.scrape(gateway))

        exported: set[str] = set()
        labels = set(ADDED_LABELS)
        for families in scrapes:
            for name, family in families.items():
                exported.add(name)
                if family["type"] == "histogram":
                    exported |= {name + suffix for suffix in ("_bucket", "_sum", "_count")}
                for _sample, label_set in family["samples"]:
                    labels |= {key for key, _ in label_set}
        self.assertTrue({"wcsgw_trunk_up", "wcsgw_hook_requests_total"} <= exported)

        checked = 0
        for where, expr, legend in expressions(load()):
            names = set(_NAME.findall(expr))
            self.assertTrue(names, f"{where}: {expr} names no wcsgw metric")
            self.assertEqual(names - exported, set(), f"{where}: {expr}")
            self.assertEqual(labels_used(expr, legend) - labels, set(), f"{where}: {expr}")
            checked += 1
        self.assertGreaterEqual(checked, 30)


# -- a real Prometheus scraping a real gateway --------------------------------------------


class Prometheus(KeepsLog):
    """Debian's ``prometheus`` on 127.0.0.1 (a free port), scraping ``target`` every second
    with the gateway's bearer token; its config, TSDB and log in a folder of its own, in its
    own process group (stopped with the group, the folder removed)."""

    def __init__(self, folder: str, target: str, token: str) -> None:
        self.folder = Path(folder)
        self.port = free_port("tcp")
        self.log_path = self.folder / "prometheus.log"
        self._proc: subprocess.Popen[bytes] | None = None
        (self.folder / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: wcsgw\n"
            f"    authorization: {{credentials: {token}}}\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n")

    async def start(self) -> None:
        self._log_file = open(self.log_path, "ab")
        self._proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.folder / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            cwd=self.folder, stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = reactor.seconds() + 20
        while True:
            if self._proc.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{self.log_text()[-3000:]}")
            try:
                if (await self.get("/-/ready"))[0] == 200:
                    return
            except ConnectionError:
                pass
            except Exception:  # noqa: BLE001 - not listening yet (twisted's ConnectError)
                pass
            if reactor.seconds() > deadline:
                raise AssertionError(f"prometheus not ready:\n{self.log_text()[-3000:]}")
            await task.deferLater(reactor, 0.1, lambda: None)

    async def stop(self) -> None:
        if self._proc is not None:
            await stop_group(self._proc, 5.0, reactor)
        self._close_log()
        shutil.rmtree(self.folder / "data", ignore_errors=True)

    async def get(self, path: str, **params: str) -> tuple[int, Any]:
        query = ("?" + urlencode(params)) if params else ""
        response = await Agent(reactor).request(
            b"GET", f"http://127.0.0.1:{self.port}{path}{query}".encode())
        body = await readBody(response)
        try:
            return response.code, json.loads(body)
        except ValueError:
            return response.code, body.decode(errors="replace")

    async def query(self, expr: str) -> tuple[int, Any]:
        return await self.get("/api/v1/query", query=expr)


PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


def as_prometheus_sees_it(expr: str) -> str:
    """Grafana's variables replaced as Grafana would for "All" gateways."""
    return expr.replace("$__rate_interval", "1m").replace("$instance", ".*")


class DashboardInPrometheusTests(unittest.TestCase):
    """Every expression run by a real Prometheus that scrapes a real gateway: it parses, and
    the panels that always have data (calls by status, sessions, process figures ...) get
    it; the ``instance`` variable lists the gateway."""

    timeout = 90

    def setUp(self) -> None:
        if not os.path.exists(PROMETHEUS):
            raise unittest.SkipTest("prometheus not found: install Debian's prometheus "
                                    "(make test does)")

    @inline
    async def test_expressions_run_in_prometheus(self) -> None:
        config = attrs.evolve(gateway_config(allowed_domains=("127.0.0.1",)),
                              rest=RestSettings(tokens=(TOKEN,)))
        gateway = Gateway(config)
        gateway.start()
        self.addCleanup(gateway.stop)
        host, port = gateway.top.getServiceNamed("http").address
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        prometheus = Prometheus(folder, f"{host}:{port}", TOKEN)
        self.addCleanup(prometheus.stop)
        await prometheus.start()

        # polled (bounded) until it has scraped twice: rate() needs two samples
        deadline = reactor.seconds() + 30
        while True:
            code, reply = await prometheus.query(
                'count_over_time(wcsgw_build_info{job="wcsgw"}[1m])')
            self.assertEqual(code, 200, reply)
            result = reply["data"]["result"]
            if result and float(result[0]["value"][1]) >= 2:
                break
            self.assertLess(reactor.seconds(), deadline, prometheus.log_text()[-3000:])
            await task.deferLater(reactor, 0.2, lambda: None)

        code, reply = await prometheus.get("/api/v1/label/instance/values",
                                           **{"match[]": "wcsgw_build_info"})
        self.assertEqual(reply["data"], [f"{host}:{port}"])

        empty = []
        for where, expr, _legend in expressions(load()):
            if expr.startswith("label_values("):
                continue
            code, reply = await prometheus.query(as_prometheus_sees_it(expr))
            self.assertEqual((code, reply.get("status")), (200, "success"),
                             f"{where}: {expr}: {reply}")
            if not reply["data"]["result"]:
                empty.append(where)
        # what has no series on an idle gateway with no trunk, call, hook or SIP traffic
        self.assertLessEqual(set(empty), {
            "Calls ended per minute", "Live calls by media mode and codecs",
            "Call set-up time (start to answer)", "Trunks up", "Hooks per second",
            "SIP requests received per second", "SIP responses received per second"}, empty)
        self.assertNotIn("Live calls by status", empty)
        self.assertNotIn("Resident memory", empty)
