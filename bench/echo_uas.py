"""A SIP answering endpoint that echoes RTP back, in its own process: the far end of the
benchmarks, the same for wcsgw and for Janus.

It is wcsgw's own ``echo`` test line (:class:`wcsgw.calls.testlines.TestLines`: answers any
INVITE to ``sip:echo@127.0.0.1:PORT`` with the first G.711 codec offered and re-sends every
RTP packet it gets, payload untouched, as its own stream) run outside the gateway, so the
gateway's CPU figures do not include the far end's work.

Output on stdout, one line each (times are ``time.monotonic()``, CLOCK_MONOTONIC, which every
process on the machine shares):

* ``READY <sip-port>`` once listening;
* ``SETUP <bench-id> <t_invite> <t_200>`` per answered INVITE carrying ``X-Bench-Id`` (the load
  caller puts its callId there through ``sipHeaders``): when the INVITE reached the line and
  when its 200 OK was handed to the socket.  The bench joins these with the caller's own
  ``call`` sent / ``ESTABLISHED`` received times to get the gateway's set-up overhead.

Run: ``python bench/echo_uas.py [--media-ports 40000-49999]``; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--media-ports", default="40000-49999")
    args = parser.parse_args()
    low, high = (int(p) for p in args.media_ports.split("-"))

    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor

    from wcsgw.calls import testlines
    from wcsgw.media.ports import PortAllocator

    original_take = testlines.TestCall.take

    def timed_take(self, request, transaction, now):  # type: ignore[no-untyped-def]
        t_invite = time.monotonic()
        original_take(self, request, transaction, now)
        bench_id = request.headers.get("X-Bench-Id") if hasattr(request, "headers") else None
        if bench_id:
            sys.stdout.write(f"SETUP {bench_id} {t_invite:.6f} {time.monotonic():.6f}\n")
            sys.stdout.flush()

    testlines.TestCall.take = timed_take  # type: ignore[method-assign]

    lines = testlines.TestLines(reactor, allocator=PortAllocator("127.0.0.1", low, high))

    def started() -> None:
        sys.stdout.write(f"READY {lines.port}\n")
        sys.stdout.flush()

    reactor.callWhenRunning(lines.startService)
    reactor.callWhenRunning(lambda: reactor.callLater(0, started))
    reactor.addSystemEventTrigger("before", "shutdown", lines.stopService)
    reactor.run()


if __name__ == "__main__":
    main()
