"""REST hooks (docs/hooks.md, docs/contract.md): the backend of an ``[[apps]]`` entry is asked
before a session connects, a call is placed, an incoming call rings or a far end's transfer is
followed, and told afterwards what happened.

The protocol is sans-IO (:mod:`.signing`, :mod:`.replies`, :mod:`.queue`); :mod:`.client` is
the one Twisted HTTP adapter and :mod:`.runtime` puts them together for the call layer.
"""
