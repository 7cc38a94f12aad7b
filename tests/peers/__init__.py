"""Real peers (Kamailio, later baresip and Chromium) started and stopped by the test suite.

Each peer runs on loopback, on ports picked at run time (:mod:`tests.peers.ports`), in its own
process group so that stopping it leaves nothing behind.
"""
