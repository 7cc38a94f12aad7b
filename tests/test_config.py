"""The config file: defaults, one-line errors that name the key, env overrides, the example."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import attrs
from twisted.trial import unittest

from wcsgw import __version__
from wcsgw.config import (
    Account,
    Config,
    ConfigError,
    load_config,
    parse_config,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "docs" / "example.toml"


class ConfigTestCase(unittest.TestCase):
    def load(self, text: str, environ: dict[str, str] | None = None) -> Config:
        fd, path = tempfile.mkstemp(suffix=".toml")
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return load_config(path, environ or {})

    def error(self, text: str, environ: dict[str, str] | None = None) -> str:
        with self.assertRaises(ConfigError) as caught:
            self.load(text, environ)
        message = str(caught.exception)
        self.assertNotIn("\n", message)
        return message


class DefaultsTests(ConfigTestCase):
    def test_no_file_gives_safe_defaults(self) -> None:
        config = load_config(None, {})
        self.assertEqual(config, Config())
        self.assertEqual((config.http.listen, config.http.port), ("127.0.0.1", 8080))
        sip = config.sip
        self.assertEqual((sip.listen, sip.port, sip.advertised_address), ("127.0.0.1", 5060, ""))
        self.assertEqual((sip.t1, sip.t2, sip.t4), (0.5, 4.0, 5.0))
        self.assertEqual((sip.max_message_size, sip.max_connections), (65535, 1024))
        self.assertEqual(sip.idle_timeout, 300.0)
        self.assertEqual(sip.user_agent, f"wcsgw/{__version__}")
        self.assertEqual(config.rest.tokens, ())
        self.assertEqual(config.policy.allowed_domains, ())
        self.assertEqual(config.log.level, "info")
        self.assertEqual(config.accounts, ())

    def test_empty_file_is_defaults(self) -> None:
        self.assertEqual(self.load(""), Config())

    def test_settings_are_frozen(self) -> None:
        config = load_config(None, {})
        with self.assertRaises(attrs.exceptions.FrozenInstanceError):
            config.sip.port = 1  # type: ignore[misc]

    def test_advertised_host(self) -> None:
        self.assertEqual(self.load("").sip.advertised_host, "127.0.0.1")
        self.assertEqual(self.load('[sip]\nlisten = "0.0.0.0"').sip.advertised_host, "127.0.0.1")
        self.assertEqual(self.load('[sip]\nlisten = "::"').sip.advertised_host, "127.0.0.1")
        self.assertEqual(self.load('[sip]\nlisten = "127.0.0.2"').sip.advertised_host, "127.0.0.2")
        config = self.load('[sip]\nlisten = "0.0.0.0"\nadvertised_address = "gw.example.com"')
        self.assertEqual(config.sip.advertised_host, "gw.example.com")

    def test_full_file(self) -> None:
        config = self.load("""
            [http]
            listen = "0.0.0.0"
            port = 0
            [sip]
            listen = "::1"
            port = 5070
            advertised_address = "203.0.113.7"
            t1 = 1            # an integer is fine for a float key
            t2 = 8
            idle_timeout = 30
            [rest]
            tokens = ["s3cret"]
            [policy]
            allowed_domains = ["pbx.example.com"]
            [log]
            level = "DEBUG"
            [[accounts]]
            login = "1001"
            password = "pass1001"
            domain = "127.0.0.1"
            port = 5080
            transport = "tcp"
            [[accounts]]
            login = "trunk"
            auth_name = "trunk-auth"
            domain = "pbx.example.com"
            outbound_proxy = "sbc.example.com"
            register = false
            expires = 3600
            display_name = "Front desk"
        """)
        self.assertEqual(config.http.port, 0)
        self.assertEqual(config.sip.t1, 1.0)
        self.assertIsInstance(config.sip.t1, float)
        self.assertEqual(config.log.level, "debug")
        self.assertEqual(config.rest.tokens, ("s3cret",))
        first, second = config.accounts
        self.assertEqual(first, Account(login="1001", password="pass1001", domain="127.0.0.1",
                                        port=5080, transport="tcp"))
        self.assertEqual(first.auth_name, "1001", "auth_name defaults to login")
        self.assertEqual(first.aor, "sip:1001@127.0.0.1")
        self.assertEqual(first.server_host, "127.0.0.1")
        self.assertEqual(second.auth_name, "trunk-auth")
        self.assertEqual(second.server_host, "sbc.example.com")
        self.assertFalse(second.register)
        self.assertEqual((second.port, second.transport, second.expires), (5060, "udp", 3600))

    def test_secrets_masked_in_repr(self) -> None:
        config = self.load("""
            [rest]
            tokens = ["tok-123"]
            [[accounts]]
            login = "1001"
            password = "pass-xyz"
            domain = "example.com"
        """)
        text = repr(config)
        self.assertNotIn("pass-xyz", text)
        self.assertNotIn("tok-123", text)
        self.assertIn("password='***'", text)
        self.assertEqual(config.accounts[0].password, "pass-xyz")


class ErrorTests(ConfigTestCase):
    """Each kind of mistake: one line, naming the key."""

    def test_unknown_section(self) -> None:
        self.assertTrue(self.error("[sipp]\nport = 1").startswith("sipp: unknown section"))

    def test_unknown_key(self) -> None:
        self.assertTrue(self.error("[sip]\nprot = 5060").startswith("sip.prot: unknown key"))

    def test_unknown_account_key(self) -> None:
        message = self.error('[[accounts]]\nlogin="1"\ndomain="d"\npasword="x"')
        self.assertTrue(message.startswith("accounts[0].pasword: unknown key"), message)

    def test_wrong_type_string_for_int(self) -> None:
        self.assertEqual(self.error('[sip]\nport = "x"'),
                         'sip.port: must be an integer from 0 to 65535, got "x"')

    def test_bool_is_not_int(self) -> None:
        self.assertEqual(self.error("[http]\nport = true"),
                         "http.port: must be an integer from 0 to 65535, got true")

    def test_float_is_not_int(self) -> None:
        self.assertIn("sip.max_connections: must be an integer",
                      self.error("[sip]\nmax_connections = 10.5"))

    def test_bool_is_not_float(self) -> None:
        self.assertIn("sip.t1: must be a number", self.error("[sip]\nt1 = true"))

    def test_port_out_of_range(self) -> None:
        self.assertEqual(self.error("[sip]\nport = 70000"),
                         "sip.port: must be an integer from 0 to 65535, got 70000")
        self.assertIn("http.port:", self.error("[http]\nport = -1"))

    def test_timers(self) -> None:
        self.assertEqual(self.error("[sip]\nt1 = 0"), "sip.t1: must be greater than 0, got 0")
        self.assertIn("sip.t1:", self.error("[sip]\nt1 = -0.5"))
        self.assertEqual(self.error("[sip]\nt1 = 2.0\nt2 = 1.0"),
                         "sip.t2: must not be less than sip.t1 (2), got 1")
        self.assertIn("sip.t4:", self.error("[sip]\nt4 = 0"))
        self.assertIn("sip.idle_timeout:", self.error("[sip]\nidle_timeout = 0"))

    def test_bad_ip_literal(self) -> None:
        self.assertIn('http.listen: must be an IP address', self.error('[http]\nlisten = "localhost"'))
        self.assertIn('sip.listen:', self.error('[sip]\nlisten = "127.0.0.256"'))

    def test_bad_advertised_address(self) -> None:
        self.assertIn("sip.advertised_address:", self.error('[sip]\nadvertised_address = "a b"'))

    def test_message_size_and_connections(self) -> None:
        self.assertIn("sip.max_message_size:", self.error("[sip]\nmax_message_size = 10"))
        self.assertIn("sip.max_connections:", self.error("[sip]\nmax_connections = 0"))

    def test_log_level(self) -> None:
        self.assertEqual(self.error('[log]\nlevel = "trace"'),
                         'log.level: must be one of debug, info, warn, error; got "trace"')

    def test_list_items(self) -> None:
        self.assertIn("rest.tokens:", self.error('[rest]\ntokens = "abc"'))
        self.assertEqual(self.error('[rest]\ntokens = ["a", 1]'),
                         "rest.tokens[1]: must be a string, got 1")
        self.assertIn("policy.allowed_domains[0]: must not be empty",
                      self.error('[policy]\nallowed_domains = [""]'))

    def test_account_required_keys(self) -> None:
        self.assertEqual(self.error('[[accounts]]\ndomain = "example.com"'),
                         "accounts[0].login: required")
        self.assertEqual(self.error('[[accounts]]\nlogin = "1001"'),
                         "accounts[0].domain: required")
        self.assertEqual(
            self.error('[[accounts]]\nlogin="1"\ndomain="a"\n[[accounts]]\nlogin=""\ndomain="b"'),
            "accounts[1].login: must not be empty")

    def test_account_values(self) -> None:
        base = '[[accounts]]\nlogin = "1001"\ndomain = "example.com"\n'
        self.assertEqual(self.error(base + 'transport = "sctp"'),
                         'accounts[0].transport: must be one of udp, tcp, tls; got "sctp"')
        self.assertIn("accounts[0].port:", self.error(base + "port = 0"))
        self.assertIn("accounts[0].register: must be true or false",
                      self.error(base + 'register = "yes"'))
        self.assertIn("accounts[0].expires:", self.error(base + "expires = 0"))
        self.assertIn("accounts[0].password: must be a string", self.error(base + "password = 1234"))
        self.assertIn("accounts[0].domain:", self.error('[[accounts]]\nlogin="1"\ndomain = ""'))

    def test_duplicate_account(self) -> None:
        text = '[[accounts]]\nlogin="1"\ndomain="a"\n[[accounts]]\nlogin="1"\ndomain="A"'
        self.assertEqual(self.error(text), "accounts[1]: duplicate of accounts[0] (1@A)")

    def test_accounts_must_be_array_of_tables(self) -> None:
        self.assertIn("accounts: must be an array of tables", self.error('accounts = "x"'))
        self.assertIn("accounts[0]: must be a table", self.error("accounts = [1]"))

    def test_section_must_be_table(self) -> None:
        self.assertEqual(self.error("sip = 5060"), "sip: must be a table ([sip]), got 5060")

    def test_password_never_in_errors(self) -> None:
        message = self.error('[[accounts]]\nlogin="1"\ndomain="a"\npassword="s3cr3t"\nport="x"')
        self.assertNotIn("s3cr3t", message)

    def test_toml_syntax_error_names_file(self) -> None:
        message = self.error("[sip\nport = 1")
        self.assertIn(".toml: not valid TOML:", message)

    def test_missing_file(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            load_config("/nonexistent/wcsgw.toml", {})
        self.assertEqual(str(caught.exception),
                         "/nonexistent/wcsgw.toml: cannot read config file: No such file or directory")

    def test_error_attributes(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            self.load("[sip]\nport = 99999")
        self.assertEqual(caught.exception.key, "sip.port")
        self.assertIsInstance(caught.exception, ValueError)


class EnvironmentTests(ConfigTestCase):
    def test_overrides_defaults(self) -> None:
        config = load_config(None, {
            "WCSGW_SIP_PORT": "5070",
            "WCSGW_HTTP_LISTEN": "0.0.0.0",
            "WCSGW_SIP_T1": "1",
            "WCSGW_REST_TOKENS": '["a", "b"]',
            "WCSGW_LOG_LEVEL": "debug",
            "WCSGW_SIP_USER_AGENT": "1.0",  # string key: kept as text, not parsed as a float
            "WCSGW_SIP_ADVERTISED_ADDRESS": '"gw.example.com"',
        })
        self.assertEqual(config.sip.port, 5070)
        self.assertEqual(config.http.listen, "0.0.0.0")
        self.assertEqual(config.sip.t1, 1.0)
        self.assertEqual(config.rest.tokens, ("a", "b"))
        self.assertEqual(config.log.level, "debug")
        self.assertEqual(config.sip.user_agent, "1.0")
        self.assertEqual(config.sip.advertised_address, "gw.example.com")

    def test_overrides_file_and_keeps_other_keys(self) -> None:
        config = self.load("[sip]\nport = 5080\nt1 = 0.25", {"WCSGW_SIP_PORT": "5090"})
        self.assertEqual((config.sip.port, config.sip.t1), (5090, 0.25))

    def test_unrelated_variables_ignored(self) -> None:
        config = load_config(None, {"WCSGW_CONFIG": "/x.toml", "HOME": "/root", "WCSGWX": "1"})
        self.assertEqual(config, Config())

    def test_bad_value_names_variable(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            load_config(None, {"WCSGW_SIP_PORT": "x"})
        self.assertEqual(str(caught.exception),
                         'sip.port (from WCSGW_SIP_PORT): must be an integer from 0 to 65535, got "x"')

    def test_unknown_key_is_an_error(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            load_config(None, {"WCSGW_SIP_PROT": "5060"})
        self.assertTrue(str(caught.exception).startswith("WCSGW_SIP_PROT: unknown key sip.prot"))

    def test_unknown_section_is_an_error(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            load_config(None, {"WCSGW_WEB_PORT": "1"})
        self.assertTrue(str(caught.exception).startswith("WCSGW_WEB_PORT: unknown section"))

    def test_accounts_not_from_environment(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            load_config(None, {"WCSGW_ACCOUNTS_LOGIN": "1"})
        self.assertIn("WCSGW_ACCOUNTS_LOGIN:", str(caught.exception))


class CodecsTests(ConfigTestCase):
    """[codecs]: names checked against the catalogue, normalised, errors naming the key."""

    def test_defaults(self) -> None:
        codecs = Config().codecs
        self.assertEqual(codecs.sip, ("opus", "G722", "PCMU", "PCMA", "G729", "speex/16000",
                                      "speex/8000"))
        self.assertEqual(codecs.webrtc, ("opus", "PCMU", "PCMA", "G722"))
        self.assertEqual(codecs.video, ("VP8", "H264"))
        self.assertTrue(codecs.transcoding)

    def test_names_any_case_normalised(self) -> None:
        codecs = self.load('[codecs]\nsip = ["pcma", "g729", "SPEEX/8000"]\n'
                           'webrtc = ["OPUS", "g722"]\nvideo = ["h264"]\n'
                           "transcoding = false\n").codecs
        self.assertEqual(codecs.sip, ("PCMA", "G729", "speex/8000"))
        self.assertEqual(codecs.webrtc, ("opus", "G722"))
        self.assertEqual(codecs.video, ("H264",))
        self.assertFalse(codecs.transcoding)

    def test_errors_name_the_key(self) -> None:
        cases = {
            'sip = ["G728"]': ("codecs.sip: unknown codec 'G728'",),
            "sip = []": ("codecs.sip: must list at least one audio codec",),
            'sip = ["PCMU", "pcmu"]': ("codecs.sip: 'pcmu' is listed twice",),
            'sip = ["speex"]': ('codecs.sip: \'speex\' is ambiguous: say "speex/16000" or '
                                '"speex/8000"',),
            'sip = ["VP8"]': ("codecs.sip: 'VP8' is a codec for video, not audio",),
            'webrtc = ["G729"]': ("codecs.webrtc: 'G729' is not a codec browsers can take",),
            'webrtc = ["opus", "H264"]': ("codecs.webrtc: 'H264' is a codec for video",),
            'video = ["opus"]': ("codecs.video: 'opus' is a codec for audio, not video",),
            "video = []": ("codecs.video: must list at least one video codec",),
            'sip = "PCMU"': ("codecs.sip: must be an array of codec names",),
            "transcoding = 1": ("codecs.transcoding: must be true or false",),
            "codec = []": ("codecs.codec: unknown key",),
        }
        for line, (start,) in cases.items():
            message = self.error(f"[codecs]\n{line}\n")
            self.assertTrue(message.startswith(start), f"{line}: {message}")

    def test_from_the_environment(self) -> None:
        config = load_config(None, {"WCSGW_CODECS_SIP": '["PCMA"]',
                                    "WCSGW_CODECS_TRANSCODING": "false"})
        self.assertEqual((config.codecs.sip, config.codecs.transcoding), (("PCMA",), False))
        message = self.error("", {"WCSGW_CODECS_SIP": '["nope"]'})
        self.assertTrue(message.startswith("codecs.sip (from WCSGW_CODECS_SIP): unknown codec"))


class ExampleTests(ConfigTestCase):
    def test_example_loads_with_documented_defaults(self) -> None:
        config = load_config(str(EXAMPLE), {})
        self.assertEqual(config, Config(), "example.toml shows the defaults")

    def test_example_account_block_loads_when_uncommented(self) -> None:
        lines = EXAMPLE.read_text().splitlines()
        start = lines.index("# [[accounts]]")
        text = "\n".join(lines[:start] + [line[2:] for line in lines[start:]])
        (account,) = self.load(text).accounts
        self.assertEqual((account.login, account.domain), ("1001", "pbx.example.com"))

    def test_every_key_is_documented(self) -> None:
        doc = (REPO / "docs" / "configuration.md").read_text()
        config = Config()
        for section in ("http", "sip", "rest", "policy", "log", "codecs", "state", "cdr",
                        "recording", "cluster"):
            for field in attrs.fields(type(getattr(config, section))):
                self.assertIn(f"`{section}.{field.name}`", doc)
        for field in attrs.fields(Account):
            self.assertIn(f"`accounts[].{field.name}`", doc)

    def test_parse_config_accepts_dict(self) -> None:
        self.assertEqual(parse_config({"sip": {"port": 0}}).sip.port, 0)
