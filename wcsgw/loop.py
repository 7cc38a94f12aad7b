"""One event loop for Twisted and asyncio.

wcsgw is written on Twisted, but some of its parts are asyncio: the media sockets are read
straight from the loop (``media/fastudp.py``), the cluster's clients are coroutines, and the
tests' browsers are aiortc.  Running Twisted on its asyncio reactor puts both on one loop: no
threads, no hand-off queues, and a Deferred and a coroutine can await each other.  This module is the one
place that decides how that reactor is installed and how values cross between the two worlds.

Rules learned the hard way (tests/test_loop.py pins them):

* A coroutine driven by Twisted (``ensureDeferred``, trial's ``async def`` tests) may ``await``
  Deferreds, but not asyncio futures/tasks directly: wrap those with :func:`as_deferred`.
* A coroutine running as an asyncio Task may await asyncio things, but not a bare Deferred
  ("Task got bad yield"): wrap it with :func:`as_future`.
* Under trial the first part of a test runs before the loop is running, so
  ``asyncio.get_running_loop()`` fails there; :func:`as_deferred` and :func:`as_future` work
  either way.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, Awaitable, TypeVar

from twisted.internet.defer import Deferred

__all__ = [
    "ReactorMismatchError",
    "install_asyncio_reactor",
    "as_deferred",
    "as_future",
]

T = TypeVar("T")


class ReactorMismatchError(RuntimeError):
    """Another reactor than Twisted's asyncio reactor is already installed.

    The gateway cannot run then: its asyncio parts (media sockets, cluster clients) would have no
    loop to run on.
    """


def _installed_reactor() -> Any | None:
    """The installed reactor, or None when nothing has imported/installed one yet.

    Only looks at ``sys.modules``: importing ``twisted.internet.reactor`` here would install the
    platform default reactor as a side effect, which is exactly what we must avoid.
    """
    if "twisted.internet.reactor" not in sys.modules:
        return None
    return sys.modules["twisted.internet.reactor"]


def install_asyncio_reactor() -> Any:
    """Install Twisted's ``AsyncioSelectorReactor`` on a fresh ``SelectorEventLoop``.

    Idempotent: when the asyncio reactor is already installed (by an earlier call, by
    ``trial --reactor=asyncio`` or ``twistd --reactor=asyncio``), it is returned unchanged.
    When another reactor is installed, raises :class:`ReactorMismatchError`, because silently
    running on the wrong reactor would only fail later, at the first coroutine.

    A *Selector* loop is chosen explicitly: the asyncio reactor needs ``add_reader`` /
    ``add_writer``, which Windows' proactor loop lacks, and a fresh loop avoids adopting a loop
    some library created and maybe closed.  The loop is also made asyncio's current loop, so
    ``asyncio.get_event_loop()`` in library code finds the reactor's loop.

    Not uvloop, measured (docs/performance.md, "Lever: the relay's wake-ups"): no clear gain
    per relayed call, and Twisted's reactor arms its timer on the loop's clock but decides
    what is due on ``time.time()``; uvloop's clock is in whole milliseconds, so every timer
    fired early and spun ~25 loop turns until it was due.
    """
    from twisted.internet.asyncioreactor import AsyncioSelectorReactor

    current = _installed_reactor()
    if current is not None:
        if isinstance(current, AsyncioSelectorReactor):
            return current
        cls = type(current)
        raise ReactorMismatchError(
            f"wcsgw needs Twisted's asyncio reactor, but {cls.__module__}.{cls.__qualname__} "
            "is already installed; start with no --reactor option or with --reactor=asyncio"
        )
    loop = asyncio.SelectorEventLoop()
    asyncio.set_event_loop(loop)
    from twisted.internet import asyncioreactor

    asyncioreactor.install(loop)  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
    from twisted.internet import reactor

    return reactor


def as_deferred(awaitable: Awaitable[T]) -> "Deferred[T]":
    """Run a coroutine (or wrap a future/task) on the shared loop and return a Deferred.

    A Deferred passes through unchanged; a coroutine, future or other awaitable becomes an
    asyncio Task on the current loop (the reactor's loop, see :func:`install_asyncio_reactor`), wrapped with
    ``Deferred.fromFuture`` so cancelling the Deferred cancels the task (the Deferred then
    fails with ``asyncio.CancelledError``).
    """
    if isinstance(awaitable, Deferred):
        return awaitable
    return Deferred.fromFuture(asyncio.ensure_future(awaitable))


def as_future(deferred: "Deferred[T]") -> "asyncio.Future[T]":
    """Expose a Deferred to asyncio code as a Future on the current (reactor's) loop.

    ``await deferred`` already works inside a coroutine; this is for asyncio APIs that insist on
    futures (``asyncio.wait``, ``gather`` with ``return_exceptions``, ``wait_for`` timeouts).
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    return deferred.asFuture(loop)
