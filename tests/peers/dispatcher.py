"""Kamailio as the cluster's SIP front: registrar + proxy + dispatcher in front of the nodes.

Usage inside a trial test (the reactor is running)::

    ds = Dispatcher([("a", 5071), ("b", 5072)])   # the nodes' SIP ports (UDP)
    await ds.start()
    self.addCleanup(ds.stop)
    await ds.until_active({"a": True, "b": True})  # both answered an OPTIONS probe
    ... an INVITE to sip:gw1@127.0.0.1 sent to (ds.host, ds.port) reaches a node ...

The routing (tests/peers/kamailio-dispatcher.cfg says why): calls whose user matches
``DS_USERS`` (``^gw``) go round-robin to the active nodes, failing over on 503 or a timeout;
REGISTERs are saved here (the nodes register their sessions directly) and calls for a
registered user go to its Contact, which names the node that registered it.  Everything else
of :class:`~tests.peers.kamailio.Kamailio` (users, process group, kamcmd, bindings) holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from twisted.internet import task

from tests.peers.kamailio import Kamailio, parse_kamcmd

__all__ = ["Dispatcher", "parse_ds_list"]

HERE = Path(__file__).resolve().parent
POLL = 0.05


def parse_ds_list(text: str) -> dict[str, dict[str, str]]:
    """``kamcmd dispatcher.list`` -> {uri: {"flags": "AP", ...}} (A active, I inactive,
    D disabled; P probing)."""
    found: dict[str, dict[str, str]] = {}

    def walk(tree: list[tuple[str, Any]]) -> None:
        for key, value in tree:
            if key == "DEST" and isinstance(value, list):
                fields = {k: v for k, v in value if isinstance(v, str)}
                if "URI" in fields:
                    found[fields["URI"]] = {"flags": fields.get("FLAGS", "")}
            elif isinstance(value, list):
                walk(value)

    walk(parse_kamcmd(text))
    return found


class Dispatcher(Kamailio):
    """Kamailio with ``kamailio-dispatcher.cfg``: ``nodes`` are (name, SIP port on host)."""

    template = HERE / "kamailio-dispatcher.cfg"

    def __init__(self, nodes: Sequence[tuple[str, int]], ping: int = 1,
                 defines: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(defines={"DS_PING": str(ping), **(defines or {})}, **kwargs)
        self.nodes = list(nodes)
        self.defines["DS_LIST"] = f'"{self.rundir / "dispatcher.list"}"'

    def uri(self, name: str) -> str:
        port = dict(self.nodes)[name]
        return f"sip:{self.host}:{port}"

    def _write_config(self) -> Path:
        cfg = super()._write_config()
        (self.rundir / "dispatcher.list").write_text("".join(
            f"1 {self.uri(name)} 0 0 name={name}\n" for name, _ in self.nodes))
        return cfg

    async def _active(self) -> dict[str, bool]:
        listed = parse_ds_list(await self.kamcmd("dispatcher.list"))
        return {name: listed.get(self.uri(name), {}).get("flags", "").startswith("A")
                for name, _ in self.nodes}

    async def active(self) -> dict[str, bool]:
        """{node name: True when the dispatcher would send it calls}."""
        return await self._active()

    async def until_active(self, wanted: Mapping[str, bool], timeout: float = 10.0) -> None:
        """Wait (bounded) until the probes have put each named node in the wanted state."""
        from twisted.internet import reactor

        deadline = reactor.seconds() + timeout
        while True:
            now = await self._active()
            if all(now.get(name) == state for name, state in wanted.items()):
                return
            if reactor.seconds() > deadline:
                raise AssertionError(f"dispatcher: not {dict(wanted)} within {timeout:g} s "
                                     f"(now {now}); log tail:\n{self.log_tail()}")
            await task.deferLater(reactor, POLL, lambda: None)
