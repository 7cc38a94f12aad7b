"""The installed package holds every package of the tree.

Why: ``setup.cfg`` lists its packages by name, and a package left out of the list (once
``wcsgw.config``, ``wcsgw.calls.hooks`` and ``wcsgw.sip.transaction``) is simply missing from
``pip install .`` — the gateway then runs from the source folder, where Python finds it
anyway, and fails anywhere else.
"""

from __future__ import annotations

import configparser
from pathlib import Path

from twisted.trial import unittest

ROOT = Path(__file__).resolve().parent.parent


class PackageListTests(unittest.TestCase):
    def test_every_package_of_the_tree_is_installed(self) -> None:
        config = configparser.ConfigParser()
        config.read(ROOT / "setup.cfg")
        listed = set(config["options"]["packages"].split())
        tree = {".".join(p.parent.relative_to(ROOT).parts)
                for p in (ROOT / "wcsgw").rglob("__init__.py") if "__pycache__" not in p.parts}
        self.assertEqual(tree - listed, set(), "packages missing from setup.cfg")
        self.assertEqual(listed - tree - {"twisted.plugins"}, set(),
                         "setup.cfg lists packages the tree does not have")
