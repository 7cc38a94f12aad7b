"""Layer media (see docs/architecture.md)."""
