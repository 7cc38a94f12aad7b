"""Several gateway processes as one (docs/scaling.md): shared state in Redis.

A layer between the API and the calls: it follows the local calls and sessions (registry
watchers) into Redis — which node holds what, which nodes are alive, the resume tokens — and
lets the API hand a request for another node's call to that node.  Each node stays the whole
product for its own calls; without ``[cluster] redis_url`` none of this runs.
"""
