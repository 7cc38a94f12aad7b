"""What outlives a call: its record (docs/operations.md, "Call records").

A layer of its own, below the call layer: the call layer hands it finished records (plain
dicts in docs/contract.md's shape) and the API layer reads them back; it knows nothing of
calls, SIP or media, and it never blocks the event loop (writes go through a bounded queue
to a worker thread).
"""
