"""Layer calls (see docs/architecture.md)."""
