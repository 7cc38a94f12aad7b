"""Twisted and asyncio share one loop (run with ``trial --reactor=asyncio``, as `make test` does).

The gateway depends on this: aiortc/aioice coroutines and Twisted protocols call each other
directly.  These tests exercise both directions on the suite's own reactor.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

from twisted.internet import defer, task
from twisted.internet.asyncioreactor import AsyncioSelectorReactor
from twisted.trial import unittest

from wcsgw.loop import ReactorMismatchError, as_deferred, as_future, install_asyncio_reactor


def _reactor():
    from twisted.internet import reactor

    return reactor


class SharedLoopTests(unittest.TestCase):
    def test_reactor_is_asyncio_on_running_loop(self) -> None:
        reactor = _reactor()
        self.assertIsInstance(reactor, AsyncioSelectorReactor)
        # The reactor drives asyncio's loop: the loop asyncio sees as running *is* the
        # reactor's loop (checked from inside a coroutine scheduled on it).

        async def running_loop() -> asyncio.AbstractEventLoop:
            return asyncio.get_running_loop()

        d = as_deferred(running_loop())
        d.addCallback(self.assertIs, reactor._asyncioEventloop)
        return d

    def test_install_is_idempotent_under_asyncio_reactor(self) -> None:
        self.assertIs(install_asyncio_reactor(), _reactor())

    @defer.inlineCallbacks
    def test_twisted_awaits_asyncio_coroutine(self):  # type: ignore[no-untyped-def]
        """inlineCallbacks code waits for a coroutine that uses asyncio primitives."""
        events: list[str] = []

        async def work() -> str:
            loop = asyncio.get_running_loop()
            await asyncio.sleep(0)
            events.append("slept")
            fut = loop.create_future()
            loop.call_soon(fut.set_result, "from call_soon")
            return await fut

        result = yield as_deferred(work())
        self.assertEqual(result, "from call_soon")
        self.assertEqual(events, ["slept"])

    def test_ensure_deferred_coroutine_awaits_asyncio_task(self) -> None:
        async def inner() -> int:
            await asyncio.sleep(0.01)
            return 42

        async def outer() -> int:
            # Twisted-driven coroutine awaiting an asyncio task via a Deferred.
            return await as_deferred(asyncio.ensure_future(inner())) + 1

        return defer.ensureDeferred(outer()).addCallback(self.assertEqual, 43)

    def test_asyncio_awaits_deferred_fired_by_reactor(self) -> None:
        """An asyncio coroutine (a real asyncio Task) awaits a Deferred fired by callLater."""
        reactor = _reactor()

        async def asyncio_side() -> str:
            self.assertIsNotNone(asyncio.current_task(), "runs as an asyncio Task")
            d: defer.Deferred[str] = defer.Deferred()
            reactor.callLater(0.01, d.callback, "fired by reactor")
            first = await as_future(d)
            # An asyncio Task cannot await a bare Deferred ("Task got bad yield"): as_future.
            second = await as_future(task.deferLater(reactor, 0.01, lambda: "deferLater"))
            return f"{first}, {second}"

        return as_deferred(asyncio_side()).addCallback(
            self.assertEqual, "fired by reactor, deferLater"
        )

    def test_failure_crosses_both_ways(self) -> None:
        async def boom() -> None:
            await asyncio.sleep(0)
            raise ValueError("from asyncio")

        d = as_deferred(boom())
        return self.assertFailure(d, ValueError)

    async def test_cancel_deferred_cancels_task(self) -> None:
        # trial drives ``async def`` tests itself (ensureDeferred): they await Deferreds, and
        # reach asyncio only through as_deferred.
        reactor = _reactor()

        async def forever() -> None:
            await asyncio.sleep(3600)

        fut = asyncio.ensure_future(forever())
        d = as_deferred(fut)
        await task.deferLater(reactor, 0.01, lambda: None)
        d.cancel()
        with self.assertRaises((defer.CancelledError, asyncio.CancelledError)):
            await d
        await task.deferLater(reactor, 0, lambda: None)
        self.assertTrue(fut.cancelled())

    def test_as_deferred_passes_deferred_through(self) -> None:
        d: defer.Deferred[int] = defer.succeed(1)
        self.assertIs(as_deferred(d), d)


class InstallTests(unittest.TestCase):
    """install_asyncio_reactor in a fresh interpreter (the suite's reactor is already fixed)."""

    def _python(self, code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True, text=True, timeout=60,
        )

    def test_installs_on_fresh_interpreter_and_is_idempotent(self) -> None:
        proc = self._python("""
            import asyncio, sys
            from wcsgw.loop import install_asyncio_reactor
            assert "twisted.internet.reactor" not in sys.modules
            r1 = install_asyncio_reactor()
            r2 = install_asyncio_reactor()
            from twisted.internet import reactor
            assert r1 is r2 is reactor, (r1, r2, reactor)
            assert type(reactor).__name__ == "AsyncioSelectorReactor"
            assert isinstance(reactor._asyncioEventloop, asyncio.SelectorEventLoop)
            assert asyncio.get_event_loop_policy().get_event_loop() is reactor._asyncioEventloop
            reactor.callLater(0, reactor.stop)
            reactor.run()
            print("ok")
        """)
        self.assertEqual(proc.stdout.strip(), "ok", proc.stderr)

    def test_other_reactor_is_a_clear_error(self) -> None:
        proc = self._python("""
            from twisted.internet import pollreactor
            pollreactor.install()
            from wcsgw.loop import install_asyncio_reactor, ReactorMismatchError
            try:
                install_asyncio_reactor()
            except ReactorMismatchError as e:
                print(e)
        """)
        self.assertIn("wcsgw needs Twisted's asyncio reactor", proc.stdout, proc.stderr)
        self.assertIn("PollReactor", proc.stdout)
        self.assertTrue(issubclass(ReactorMismatchError, RuntimeError))
