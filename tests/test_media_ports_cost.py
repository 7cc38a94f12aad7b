"""PortAllocator's set-up cost: a browser leg's single port is found from the ports in use, not
by walking the whole range (docs/performance.md, "Lever: call set-up": the walk was 1.2-1.8 ms
of every call's `call` -> INVITE with the default 10 000-port range), and the choice is the one
the walk made — checked against that walk, kept here as the oracle, over random sequences."""

from __future__ import annotations

import random

from twisted.trial import unittest

from wcsgw.media.ports import PortAllocator, PortsExhausted


def walk_single(a: PortAllocator, blocked: set[int]) -> int | None:
    """The single port the old allocate(1) chose first: the first hole in round-robin order."""
    ordered = ([p for p in range(a.port_min, a.port_max + 1) if p >= a._next]
               + [p for p in range(a.port_min, a.port_max + 1) if p < a._next])
    for port in ordered:
        if port not in a._in_use and a._partner_taken(port) and port not in blocked:
            return port
    return None


class CountingAllocator(PortAllocator):
    def __init__(self, *args: object, blocked: set[int] | None = None) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.blocked = blocked or set()
        self.partner_checks = 0
        self.bind_tests = 0

    def _bindable(self, port: int) -> bool:
        self.bind_tests += 1
        return port not in self.blocked

    def _partner_taken(self, port: int) -> bool:
        self.partner_checks += 1
        return super()._partner_taken(port)


class PortCostTests(unittest.TestCase):
    def test_a_single_port_does_not_walk_the_range(self) -> None:
        a = CountingAllocator("127.0.0.1", 30000, 39999)
        for _ in range(5):  # five calls: a pair and a single each
            a.allocate(2, even=True)
            a.allocate(1)
        self.assertEqual(len(a.in_use), 15)
        self.assertLess(a.partner_checks, 200)  # the walk: ~10 000 per single port
        self.assertLess(a.bind_tests, 20)

    def test_the_choice_is_the_walks(self) -> None:
        for trial in range(300):
            rng = random.Random(trial)
            low = rng.randint(1000, 1003)
            high = low + rng.randint(0, 30)
            blocked = {p for p in range(low, high + 1) if rng.random() < 0.1}
            a = CountingAllocator("127.0.0.1", low, high, blocked=blocked)
            held: list[list[int]] = []
            for _ in range(40):
                if rng.random() < 0.6:
                    if rng.random() < 0.5:
                        expected = walk_single(a, blocked)
                        try:
                            got = a.allocate(1)
                        except PortsExhausted:
                            got = None
                        if expected is not None:
                            self.assertEqual(got, [expected], trial)
                    else:
                        try:
                            held.append(a.allocate(2, even=True))
                        except PortsExhausted:
                            pass
                        continue
                    if got:
                        held.append(got)
                elif held:
                    a.release(held.pop(rng.randrange(len(held))))
