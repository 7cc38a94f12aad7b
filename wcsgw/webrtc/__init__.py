"""Layer webrtc (see docs/architecture.md)."""
