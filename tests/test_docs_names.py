"""The names the pages give to things in the code exist: config keys, JSON-RPC methods, REST routes.

A reader copies `sip.prack` into a config file or POSTs to `/rest-api/call/startup` because a
page said so; a key renamed, a method dropped or a route moved leaves the page promising
what the gateway refuses, and first-call.md said for months that `/metrics` and G.729 were
"not built yet" after both were. The real sets are read from the code (the config schema,
`METHODS`, `ROUTES`), never from a list kept here, so a new key needs no edit of this test.
These tests read files only: no socket, no reactor.
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from wcsgw.api.methods import METHODS
from wcsgw.api.restrules import ROUTES, route_of
from wcsgw.calls.hooks.taps import NOTICES
from wcsgw.config import apps, dialplan, iceservers, sections

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]

#: the sections that are arrays of tables: their keys are written `accounts[].login`
ARRAYS = {"accounts": set(sections._ACCOUNT_KEYS), "apps": set(apps._RULES),
          "routes": set(dialplan._ROUTE)}


def config_keys() -> set[str]:
    """Every `section.key` the config loader takes, as docs/configuration.md writes them."""
    keys = {f"{name}.{key}" for name, (_, rules) in sections.SCHEMA.items() for key in rules}
    keys |= {f"dialplan.{key}" for key in dialplan._SECTION}
    keys |= {f"{name}[].{key}" for name, rules in ARRAYS.items() for key in rules}
    keys |= {f"webrtc.ice_servers[].{key}" for key in iceservers._KEYS}
    return keys


SECTIONS = {*sections.SCHEMA, "dialplan", *ARRAYS}
#: `section.key` or `section[].key` (optionally `.sub[].key`) opening a code span.
DOTTED = re.compile(r"`([a-z_]+)((?:\[\])?\.[a-z_]+(?:\[\]\.[a-z_]+)?)(?=[`\s=,)])")
#: `[section] key` or `[[section]]` opening a code span.
BRACKETED = re.compile(r"`\[(\[?)([a-z_]+)\]\]?(?: ([a-z_]+))?(?=[`\s=])")
#: a JSON-RPC message's method, or prose naming one: "the `call` method", "method `call`".
METHOD = re.compile(r'"method"\s*:\s*"(\w+)"|`(\w+)` method\b|\bmethod `(\w+)`')
#: a REST route: `/rest-api/call/startup`, or `call/startup` in a code span.
REST = re.compile(r"/rest-api/([\w.]+(?:/[\w{}<>.*-]+)?)|`/?([a-z_]+/[a-z_]+)`")
REST_GROUPS = {route.split("/")[1] for route in ROUTES}

#: Deliberate exceptions, each with why: names that look like ours and are not.
ALLOWED = {
    # keys that existed once: the pages say where they went; the loader names them too
    *sections.REMOVED,
    # the call object's `media` field (docs/contract.md), not the `[media]` section
    "media.mode",
    # Flashphoner WCS's REST method, named where the pages say we do not have it
    "call/inject_stream",
}
def extras() -> set[str]:
    """The pip extras setup.cfg declares: `[postgresql]`, `[test]` are those, not sections."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg", encoding="utf-8")
    return set(parser["options.extras_require"])


EXTRAS = extras()
#: `cdr.sqlite`, `codecs.py`: a file's name, not a `section.key`
FILE_SUFFIXES = {"py", "sqlite", "csv", "json", "md", "toml", "wav", "log"}


def module_name(dotted: str) -> bool:
    """`sip.uri`, `media.transcode`: a module of the package, not a config key."""
    section, _, key = dotted.partition(".")
    if key in FILE_SUFFIXES:
        return True
    base = ROOT / "wcsgw" / section / key.split(".")[0]
    return base.with_suffix(".py").is_file() or base.is_dir()


def notifications() -> set[str]:
    """What the server sends as `method` of a notification: every string literal of the
    WebSocket adapter and every name given to a `notify(...)` anywhere (over-inclusive,
    never stale), and the notices the hooks' tap relays."""
    names = set(re.findall(r'"(\w+)"', (ROOT / "wcsgw" / "api" / "ws.py").read_text()))
    for path in (ROOT / "wcsgw").rglob("*.py"):
        names |= set(re.findall(r'notify\(\s*"(\w+)"', path.read_text(encoding="utf-8")))
    return names | set(NOTICES)


def unknown_names(page: str, text: str) -> list[str]:
    """Each name `text` gives that the code does not have, as `page:line: name`."""
    keys, methods = config_keys(), set(METHODS) | notifications()
    found: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{page}:{number}"
        for section, rest in DOTTED.findall(line):
            name = section + rest
            if section in SECTIONS and name not in keys and name not in ALLOWED \
                    and not module_name(name):
                found.append(f"{where}: config key {name}")
        for _, section, key in BRACKETED.findall(line):
            name = f"{section}.{key}" if key else section
            if section in EXTRAS or name in ALLOWED:
                continue  # a pip extra, `[test]`, or a key that was removed
            if section not in SECTIONS or (key and f"{section}.{key}" not in keys
                                           and f"{section}[].{key}" not in keys):
                found.append(f"{where}: config section {name}")
        for groups in METHOD.findall(line):
            name = next(group for group in groups if group)
            if name not in methods:
                found.append(f"{where}: method {name}")
        for full, short in REST.findall(line):
            route = full or short
            if route.endswith(("*", "...")) or route in ALLOWED:
                continue  # `/rest-api/call/*`, `/rest-api/call/...`: a family of routes
            if not full and route.split("/")[0] not in REST_GROUPS:
                continue  # `media/opus.py`-like paths: only our route groups are routes
            if route_of(route.split("/")) is None:
                found.append(f"{where}: REST route {route}")
    return found


class NamesExist(SynchronousTestCase):
    def test_pages_name_only_what_the_code_has(self) -> None:
        found = [name for page in PAGES
                 for name in unknown_names(str(page.relative_to(ROOT)),
                                           page.read_text(encoding="utf-8"))]
        self.assertEqual(found, [])

    def test_a_wrong_name_is_found(self) -> None:
        """The check can fail: each kind of name, misspelt, is reported; the real ones are not."""
        bad = ("Set `sip.portt = 5060` and `[cdr] databse`, `[nosuch]`, `accounts[].logn`;\n"
               'send {"method": "hangupp"}, or the `dial` method; POST /rest-api/call/startupp '
               "or `cdr/finder`.\n")
        self.assertEqual(unknown_names("bad.md", bad), [
            "bad.md:1: config key sip.portt", "bad.md:1: config key accounts[].logn",
            "bad.md:1: config section cdr.databse", "bad.md:1: config section nosuch",
            "bad.md:2: method hangupp", "bad.md:2: method dial",
            "bad.md:2: REST route call/startupp", "bad.md:2: REST route cdr/finder"])
        good = ("`sip.port`, `[cdr] database`, `[[accounts]]`, `accounts[].login`, `sip.uri`;\n"
                '{"method": "call"}, the `hangup` method, /rest-api/call/startup, `cdr/find`,\n'
                "`/rest-api/recording/x.wav`, `media/opus.py`\n")
        self.assertEqual(unknown_names("good.md", good), [])
