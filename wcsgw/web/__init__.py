"""Layer web (see docs/architecture.md)."""
