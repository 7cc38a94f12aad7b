"""Layer sdp (see docs/architecture.md)."""
