"""The REST API against its OpenAPI document: schemathesis generates requests from
``/rest-api/openapi.json`` (valid and invalid ones, boundary values, wrong methods, missing
auth) and checks every reply against the document; the document lists exactly the routes the
resource serves; docs/rest-api.md covers every route, field and status, and its examples
validate against the document.

Why schemathesis runs the way it does here: its engine (what its CLI runs) is synchronous and
sends requests with ``requests``, so it runs in a worker thread (``deferToThread``) while the
site and the fake call layer run on the reactor in the test's thread — a real server on a free
port, nothing patched.  The seed is fixed so a CI run is reproducible; set
``WCSGW_SCHEMATHESIS_SEED`` / ``WCSGW_SCHEMATHESIS_EXAMPLES`` to explore further.

Schemathesis's own ``positive_data_acceptance`` check (schema-valid data must not get 400) is
replaced by :func:`positive_data_accepted`, which is the same rule with one documented
exception: a field marked ``x-wcsgw-checked-by-server`` in the document (playFile must exist,
sessionId must be connected, ...) may refuse a schema-valid value.  Every other 400 for a valid
body, and every 2xx for an invalid one (``negative_data_rejection``), fails the test.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from twisted.internet import threads
from twisted.trial import unittest

from tests.support import inline
from tests.test_api_rest import FakeCallGateway, RestTestCase, call_object, request, serve_rest
from tests.test_rest_ops import equip
from wcsgw.api import openapi, restrules
from wcsgw.api.restcalls import RestApi

try:
    import jsonschema_rs
    import schemathesis
    from schemathesis.config import SchemathesisConfig
    from schemathesis.engine import events as st_events, from_schema
except ImportError:  # pragma: no cover - the test extra installs it
    schemathesis = None

DOCS = Path(__file__).resolve().parent.parent / "docs" / "rest-api.md"
SERVER_CHECKED = "x-wcsgw-checked-by-server"


def request_schema(doc: dict[str, Any], path: str) -> dict[str, Any]:
    operation = doc["paths"][path]["post"]
    return operation["requestBody"]["content"]["application/json"]["schema"]


def server_checked_fields(doc: dict[str, Any], label: str) -> set[str]:
    """Fields of an operation's body whose values the server checks beyond the schema."""
    method, path = label.split(" ", 1)
    if method != "POST":
        return set()
    properties = request_schema(doc, path).get("properties", {})
    return {name for name, schema in properties.items() if SERVER_CHECKED in schema}


if schemathesis is not None:
    _DOC_FOR_CHECK = openapi.openapi_document(auth=True)

    @schemathesis.check
    def positive_data_accepted(ctx: Any, response: Any, case: Any) -> None:
        """A schema-valid request is not refused as malformed: 2xx, or 403/404/409 from the
        call layer; 400 only for a field the document marks as checked by the server."""
        meta = case.meta
        if meta is None or not meta.generation.mode.is_positive:
            return None
        status = response.status_code
        if 200 <= status < 300 or status in (403, 404, 409):
            return None
        if status == 400:
            field = response.json().get("field")
            if field in server_checked_fields(_DOC_FOR_CHECK, case.operation.label):
                return None
        raise AssertionError(f"a schema-valid request was refused: {status} {response.text[:300]}")


def run_schemathesis(base_url: str, token: str | None, seed: int, examples: int) -> dict[str, Any]:
    """Run every schemathesis phase but the stateful one against ``base_url`` (blocking: call
    it in a thread).  Returns failures, interaction counts and the engine's stop reason."""
    config: dict[str, Any] = {
        "base-url": base_url,
        "seed": seed,
        "workers": 1,
        "generation": {"max-examples": examples, "mode": "all", "database": "none"},
        "checks": {"positive_data_acceptance": {"enabled": False}},
        "phases": {"stateful": {"enabled": False}},
        "request-timeout": 10,
    }
    if token is not None:
        config["headers"] = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_dict(openapi.openapi_document(auth=token is not None),
                                            config=SchemathesisConfig.from_dict(config))
    out: dict[str, Any] = {"failures": [], "errors": [], "statuses": {}, "checks": {},
                           "stop": None}
    for event in from_schema(schema).execute():
        if isinstance(event, st_events.ScenarioFinished):
            recorder = event.recorder
            for interaction in recorder.interactions.values():
                if interaction.response is not None:
                    key = (recorder.label, interaction.response.status_code)
                    out["statuses"][key] = out["statuses"].get(key, 0) + 1
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    out["checks"][check.name] = out["checks"].get(check.name, 0) + 1
                    if check.status.name != "SUCCESS":
                        case = recorder.cases[case_id].value
                        info = check.failure_info
                        out["failures"].append(
                            f"{recorder.label} [{event.phase.value}] {check.name}: "
                            f"{info.failure.title if info else ''} "
                            f"{str(info.failure.message)[:300] if info else ''}\n"
                            f"    body: {json.dumps(case.body)[:400]}")
        elif isinstance(event, (st_events.NonFatalError, st_events.FatalError)):
            out["errors"].append(repr(event)[:500])
        elif isinstance(event, st_events.EngineFinished):
            out["stop"] = event.stop_reason.value
    return out


class SchemathesisTests(unittest.TestCase):
    timeout = 300

    def setUp(self) -> None:
        if schemathesis is None:
            raise unittest.SkipTest("schemathesis is not installed (pip install '.[test]')")

    async def run_against(self, tokens: tuple[str, ...]) -> dict[str, Any]:
        gateway = FakeCallGateway()
        gateway.calls["c1"] = call_object("c1")
        media = Path(self.mktemp()).resolve()
        media.mkdir()
        recordings = Path(self.mktemp()).resolve()
        recordings.mkdir()
        equip(gateway, recordings)  # cdr, recordings, ladders, a session (wcsgw.api.restops)
        base = serve_rest(self, gateway, tokens, media_folder=media)
        seed = int(os.environ.get("WCSGW_SCHEMATHESIS_SEED", "4"))
        examples = int(os.environ.get("WCSGW_SCHEMATHESIS_EXAMPLES", "40"))
        result = await threads.deferToThread(
            run_schemathesis, base, tokens[0] if tokens else None, seed, examples)
        self.assertEqual(result["errors"], [])
        self.assertEqual(result["failures"], [], "\n".join(result["failures"]))
        self.assertEqual(result["stop"], "completed")
        # It really exercised the API: every operation answered, with successes and refusals.
        labels = {label for label, _ in result["statuses"]}
        self.assertEqual(labels, {f"{m} {p}" for p, m in restrules.ROUTES.items()})
        for path, method in restrules.ROUTES.items():
            statuses = {s for (label, s) in result["statuses"] if label == f"{method} {path}"}
            self.assertIn(200, statuses, path)
            self.assertIn(405, statuses, path)
            if method == "POST" or path == restrules.RECORDING_ROUTE:
                self.assertIn(400, statuses, path)
            if method == "POST":
                self.assertIn(415, statuses, path)
        for check in ("positive_data_accepted", "negative_data_rejection",
                      "response_schema_conformance", "status_code_conformance",
                      "content_type_conformance", "unsupported_method"):
            self.assertGreater(result["checks"].get(check, 0), 50, check)
        self.assertTrue(gateway.log, "the fake call layer was never reached")
        return result

    @inline
    async def test_with_tokens(self) -> None:
        result = await self.run_against(("t0k3n",))
        self.assertGreater(result["checks"].get("ignored_auth", 0), 0)
        self.assertIn(("POST /call/hold", 401), result["statuses"])

    @inline
    async def test_without_tokens(self) -> None:
        result = await self.run_against(())
        self.assertNotIn(401, {status for _, status in result["statuses"]})


class RoutesMatchTests(RestTestCase):
    def setUp(self) -> None:
        super().setUp()
        equip(self.gateway, self.recordings)

    def test_document_paths_are_the_served_routes(self) -> None:
        doc = openapi.openapi_document(auth=False)
        served = {path: "POST" for path in RestApi(FakeCallGateway()).methods}
        served["/openapi.json"] = "GET"
        served[restrules.RECORDING_ROUTE] = "GET"  # a download: restops.RestOps.recording_file
        listed = {path: method.upper() for path, item in doc["paths"].items()
                  for method in item}
        self.assertEqual(listed, served)
        self.assertEqual(restrules.ROUTES, served)
        self.assertEqual(doc["servers"], [{"url": "/rest-api"}])
        self.assertNotIn("security", doc)
        self.assertEqual(openapi.openapi_document(auth=True)["security"], [{"bearer": []}])

    @inline
    async def test_served_document_is_the_document(self) -> None:
        reply = await request(self, self.base + "/openapi.json", method=b"GET")
        self.assertEqual(reply.json, openapi.openapi_document(auth=False))

    @inline
    async def test_each_listed_route_answers_and_nothing_else(self) -> None:
        for path, method in restrules.ROUTES.items():
            reply = await request(self, self.base + path, {} if method == "POST" else None,
                                  method=method.encode())
            # {} is a bad body for most; what matters is that the route exists
            self.assertIn(reply.status, (200, 400), path)
            self.assertNotIn("no such endpoint", reply.raw.decode(), path)
        for path in ("/call/hangup", "/call/inject_stream", "/call/send_DTMF", "/openapi.yaml",
                     "/call", "/push/startup"):
            reply = await request(self, self.base + path, {})
            self.assertIn("no such endpoint", reply.json["error"], path)


class DocsMatchTests(unittest.TestCase):
    """docs/rest-api.md against the document: one section per route, every body field and
    every response status of the route named in its section, and every JSON example in a
    section valid against that route's request or response schema."""

    def setUp(self) -> None:
        self.doc = openapi.openapi_document(auth=True)
        self.text = DOCS.read_text(encoding="utf-8")
        self.sections = {}
        for match in re.finditer(r"^### `(GET|POST) /rest-api(/\S+)`\n(.*?)(?=^### |^## |\Z)",
                                 self.text, re.S | re.M):
            self.sections[match.group(2)] = (match.group(1), match.group(3))

    def test_one_section_per_route(self) -> None:
        self.assertEqual({p: m for p, (m, _) in self.sections.items()}, restrules.ROUTES)

    def test_fields_and_statuses_are_documented(self) -> None:
        for path, (method, text) in self.sections.items():
            operation = self.doc["paths"][path][method.lower()]
            if method == "POST":
                for field in request_schema(self.doc, path).get("properties", {}):
                    self.assertIn(f"`{field}`", text, f"{path}: field {field}")
            for status in operation["responses"]:
                self.assertRegex(text, rf"\b{status}\b", f"{path}: status {status}")

    def test_examples_validate(self) -> None:
        if schemathesis is None:
            raise unittest.SkipTest("jsonschema_rs comes with schemathesis (the test extra)")
        checked = 0
        for path, (method, text) in self.sections.items():
            operation = self.doc["paths"][path][method.lower()]
            for kind, status, body in re.findall(
                    r"^(Request|Response (\d{3})):?\n\n```json\n(.*?)^```", text, re.S | re.M):
                if kind == "Request":
                    schema = request_schema(self.doc, path)
                else:
                    schema = operation["responses"][status]["content"]["application/json"]["schema"]
                rooted = {**schema, "components": self.doc["components"]}
                value = json.loads(body)
                errors = [e.message for e in jsonschema_rs.validator_for(rooted).iter_errors(value)]
                self.assertEqual(errors, [], f"{path} {kind}: {body}")
                checked += 1
        self.assertGreaterEqual(checked, 2 * len(restrules.ROUTES) - 1)
