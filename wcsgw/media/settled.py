"""One Deferred per caller of an idempotent ``close()``.

Sockets, legs and sessions close once but may be asked to close many times (the call's end,
the service's stop, a test's cleanup).  Each caller gets its own Deferred that fires with None
when the shared close is done, so one caller's callbacks can never change what another sees,
and a failure of the shared close is left on the shared chain, not handed to every caller.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

__all__ = ["settled"]


def settled(shared: defer.Deferred[Any]) -> defer.Deferred[None]:
    """A new Deferred that fires with None once ``shared`` has fired (either way)."""
    done: defer.Deferred[None] = defer.Deferred()

    def fire(result: Any) -> Any:
        done.callback(None)
        return result

    shared.addBoth(fire)
    return done
