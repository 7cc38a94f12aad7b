"""The dial plan (wcsgw.calls.dialplan) alone, then through the Policy where a callee becomes a
Request-URI: E.164 normalisation as a table, tel: URIs (RFC 3966), routes by prefix and pattern
to an account or the caller's own, per-route rewrites, the policy's number rules after
normalisation, refusals that name their rule; and [dialplan]/[[routes]] in the config."""

from __future__ import annotations

import re

from twisted.trial import unittest

from wcsgw.calls.dialplan import DialPlan, DialRefusal, Route, tel_number
from wcsgw.calls.errors import CallError, Codes
from wcsgw.calls.policy import Policy
from wcsgw.config import ConfigError, parse_config
from wcsgw.sip.account import SipAccount

OWN = SipAccount(login="1001", password="pw", domain="pbx.example")
TRUNK = SipAccount(login="trunk", password="trunk-secret", domain="gsm.example")
DE = DialPlan(country_code="49")


class NormaliseTests(unittest.TestCase):
    def test_table(self) -> None:
        table = [
            ("+49 30 1234-567", "+49301234567"),
            ("0049 (30) 1234.567", "+49301234567"),
            ("030 1234567", "+49301234567"),
            ("0 30-12 34 567", "+49301234567"),
            ("+1 (212) 555-0100", "+12125550100"),
            ("001 212 555 0100", "+12125550100"),
            ("1002", "1002"),  # an extension: no prefix, stays as typed
            ("*21#", "*21#"),  # a service code
            ("0", "0"),  # the prefix alone is not a number of the country
            ("00", "00"),
        ]
        for typed, e164 in table:
            self.assertEqual(DE.normalise(typed), e164, typed)

    def test_other_prefixes(self) -> None:
        nanp = DialPlan(country_code="1", national_prefix="1", international_prefix="011")
        self.assertEqual(nanp.normalise("011 44 20 7946 0000"), "+442079460000")
        self.assertEqual(nanp.normalise("1-212-555-0100"), "+12125550100")
        no_trunk = DialPlan(country_code="39", national_prefix="")
        self.assertEqual(no_trunk.normalise("06 1234"), "061234")  # no national prefix
        self.assertEqual(no_trunk.normalise("0039 06 1234"), "+39061234")

    def test_default_normalises_nothing_but_separators(self) -> None:
        plan = DialPlan()
        self.assertFalse(plan.active)
        self.assertEqual(plan.normalise("030 1234"), "0301234")
        self.assertEqual(plan.normalise("0049 30"), "004930")


class TelTests(unittest.TestCase):
    def test_global_and_local_with_context(self) -> None:
        self.assertEqual(tel_number("+49-30-1234", {}), "+49301234")
        self.assertEqual(tel_number("863-1234", {"phone-context": "+1-914-555"}),
                         "+19145558631234")

    def test_refused_parameters_and_contexts(self) -> None:
        for number, params in (("+4930", {"ext": "12"}), ("+4930", {"isub": "1"}),
                               ("7042", {"phone-context": "example.com"}),
                               ("+4930", {"phone-context": "+49"})):
            with self.assertRaises(DialRefusal):
                tel_number(number, params)


def routes(*entries: Route, unrouted: str = "own") -> DialPlan:
    return DialPlan(country_code="49", routes=entries, unrouted=unrouted)


class RouteTests(unittest.TestCase):
    def test_first_match_wins_prefix_and_pattern(self) -> None:
        plan = routes(Route("routes[0]", pattern=re.compile(r"\+491[5-7][0-9]+"),
                            account=TRUNK, account_name="gsm", strip=3, prepend="0",
                            user_phone=True),
                      Route("routes[1]", prefix="+49", strip=3, prepend="0"),
                      Route("routes[2]", prefix="+"))
        mobile = plan.route("+491701234567", held=True)
        self.assertEqual((mobile.user, mobile.account, mobile.user_phone),
                         ("01701234567", TRUNK, True))
        self.assertEqual(plan.route("+49301234", held=True).user, "0301234")
        self.assertEqual(plan.route("+12125550100", held=True).user, "+12125550100")
        self.assertEqual(plan.route("1002", held=True).user, "1002")  # no route: own, as is

    def test_account_routes_only_for_calls_that_may_use_held_accounts(self) -> None:
        plan = routes(Route("routes[0]", prefix="+4917", account=TRUNK, account_name="gsm"),
                      Route("routes[1]", prefix="+49", strip=1))
        self.assertIs(plan.route("+491701", held=True).account, TRUNK)
        own = plan.route("+491701", held=False)  # a browser's own account: skips to the next
        self.assertEqual((own.account, own.user), (None, "491701"))

    def test_refusals_name_the_rule(self) -> None:
        plan = routes(Route("routes[0]", prefix="+49900", refuse=True),
                      Route("routes[1]", pattern=re.compile(r"\+49[0-9]+")), unrouted="refuse")
        with self.assertRaises(DialRefusal) as caught:
            plan.route("+499001234", held=True)
        self.assertIn("routes[0] (prefix +49900)", str(caught.exception))
        with self.assertRaises(DialRefusal) as caught:
            plan.route("+331234", held=True)
        self.assertIn('dialplan.unrouted = "refuse"', str(caught.exception))

    def test_stripping_everything_is_refused(self) -> None:
        plan = routes(Route("routes[0]", prefix="1", strip=9))
        with self.assertRaises(DialRefusal) as caught:
            plan.route("1002", held=True)
        self.assertIn("routes[0]", str(caught.exception))


class PolicyWithDialPlanTests(unittest.TestCase):
    def policy(self, plan: DialPlan, **kw: object) -> Policy:
        return Policy(["pbx.example"], None, dialplan=plan, **kw)  # type: ignore[arg-type]

    def test_default_plan_is_todays_behaviour(self) -> None:
        policy = Policy(["pbx.example"], None)
        self.assertEqual(policy.routed(OWN, "030 1234"), (OWN, "sip:0301234@pbx.example"))
        self.assertEqual(policy.request_uri(OWN, "tel:+4930"), "sip:+4930@pbx.example;user=phone")
        with self.assertRaises(CallError):  # tel: parameters stay refused without a plan
            policy.request_uri(OWN, "tel:1234;phone-context=+4930")

    def test_numbers_normalised_in_every_form(self) -> None:
        policy = self.policy(DE)
        for callee in ("030 1234", "0049 30 1234", "+49 (30) 1234", "tel:+49-30-1234",
                       "tel:1234;phone-context=+49-30", "sip:030-1234@pbx.example"):
            uri = policy.request_uri(OWN, callee)
            self.assertTrue(uri.startswith("sip:+49301234@pbx.example"), (callee, uri))

    def test_number_rules_apply_after_normalisation(self) -> None:
        policy = self.policy(DE, allowed_numbers=[r"\+49[0-9]+", "1[0-9]{3}"],
                             denied_numbers=[r"\+49900[0-9]*"])
        self.assertEqual(policy.request_uri(OWN, "0301234"), "sip:+49301234@pbx.example")
        for callee in ("0900 1234", "0049900 1234", "tel:+49-900-1234"):
            with self.assertRaises(CallError) as caught:
                policy.request_uri(OWN, callee)
            self.assertEqual(caught.exception.code, Codes.FORBIDDEN)
            self.assertIn("policy.denied_numbers", caught.exception.message)
        with self.assertRaises(CallError) as caught:
            policy.request_uri(OWN, "0033 1234")
        self.assertIn("+331234 matches none of policy.allowed_numbers", caught.exception.message)

    def test_routes_choose_account_rewrite_and_user_phone(self) -> None:
        policy = self.policy(routes(
            Route("routes[0]", prefix="+4917", account=TRUNK, account_name="gsm", strip=3,
                  prepend="0", user_phone=True),
            Route("routes[1]", prefix="+49", strip=3, prepend="0")))
        self.assertEqual(policy.routed(OWN, "0170 123 4567", held=True),
                         (TRUNK, "sip:01701234567@gsm.example;user=phone"))
        # Not held: the trunk's route is skipped; the next one rewrites on the own account.
        self.assertEqual(policy.routed(OWN, "0170 123 4567"),
                         (OWN, "sip:01701234567@pbx.example"))
        self.assertEqual(policy.routed(OWN, "tel:+49301234", held=True),
                         (OWN, "sip:0301234@pbx.example;user=phone"))
        # A name is not a number: no route; a sip: URI names its host: not routed either.
        self.assertEqual(policy.routed(OWN, "alice"), (OWN, "sip:alice@pbx.example"))
        self.assertEqual(policy.routed(OWN, "sip:+4917012@pbx.example", held=True),
                         (OWN, "sip:+4917012@pbx.example"))

    def test_refusals_name_the_route_or_key(self) -> None:
        policy = self.policy(routes(Route("routes[0]", prefix="+49900", refuse=True),
                                    Route("routes[1]", prefix="+49"), unrouted="refuse"))
        with self.assertRaises(CallError) as caught:
            policy.routed(OWN, "0900 123")
        self.assertEqual((caught.exception.code, caught.exception.field),
                         (Codes.FORBIDDEN, "callee"))
        self.assertIn("refused by routes[0] (prefix +49900)", caught.exception.message)
        with self.assertRaises(CallError) as caught:
            policy.request_uri(OWN, "0044 20", field="target")
        self.assertEqual(caught.exception.field, "target")
        self.assertIn("dialplan.unrouted", caught.exception.message)

    def test_sessions_without_account_still_only_reach_test_lines(self) -> None:
        policy = Policy([], "sip:{user}@127.0.0.1:5999",
                        dialplan=routes(Route("routes[0]", prefix="", account=TRUNK,
                                              account_name="gsm")))
        self.assertEqual(policy.routed(None, "echo", held=True),
                         (None, "sip:echo@127.0.0.1:5999"))
        with self.assertRaises(CallError):
            policy.routed(None, "0301234", held=True)


class ConfigTests(unittest.TestCase):
    def error(self, data: dict[str, object]) -> str:
        with self.assertRaises(ConfigError) as caught:
            parse_config(data)
        return str(caught.exception)

    def test_defaults_and_a_full_plan(self) -> None:
        config = parse_config({})
        self.assertEqual((config.dialplan.country_code, config.routes), ("", ()))
        self.assertFalse(DialPlan.from_settings(config.dialplan, config.routes,
                                                lambda name: TRUNK).active)
        config = parse_config({
            "dialplan": {"country_code": "49", "unrouted": "refuse"},
            "accounts": [{"name": "gsm", "login": "trunk", "domain": "gsm.example"}],
            "routes": [{"pattern": r"\+491[5-7][0-9]+", "account": "gsm", "strip": 3,
                        "prepend": "0", "user_phone": True},
                       {"prefix": "+49900", "refuse": True}],
        })
        plan = DialPlan.from_settings(config.dialplan, config.routes, lambda name: TRUNK)
        self.assertEqual(plan.route(plan.normalise("0170 1234"), held=True).user, "01701234")
        with self.assertRaises(DialRefusal):
            plan.route("+4990012", held=True)

    def test_bad_values_name_the_key(self) -> None:
        cases = [
            ({"dialplan": {"country_code": "+49"}}, "dialplan.country_code:"),
            ({"dialplan": {"unrouted": "drop"}}, "dialplan.unrouted:"),
            ({"dialplan": {"trunk": "0"}}, "dialplan.trunk: unknown key"),
            ({"routes": {"prefix": "+49"}}, "routes: must be an array of tables"),
            ({"routes": [{"strip": 1}]}, "routes[0].prefix: exactly one of prefix and pattern"),
            ({"routes": [{"prefix": "+1", "pattern": "x"}]}, "routes[0].prefix: exactly one"),
            ({"routes": [{"pattern": "(["}]}, "routes[0].pattern: is not a regular expression"),
            ({"routes": [{"prefix": "1", "prepend": "9;x"}]}, "routes[0].prepend: must be a"),
            ({"routes": [{"prefix": "1", "account": "gsm"}]}, "routes[0].account: names no"),
            ({"routes": [{"prefix": "1", "refuse": True, "strip": 1}]}, "routes[0].refuse:"),
        ]
        for data, start in cases:
            message = self.error(data)
            self.assertTrue(message.startswith(start), (data, message))
