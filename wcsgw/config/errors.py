"""The one exception of the config: one line that names the key.

Why one line: the message is all an operator sees when the gateway refuses to start, and
twistd and log collectors mangle multi-line messages.
"""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A config problem, as one line that names the key (``section.key: what is wrong``)."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        line = f"{key}: {problem}" if key else problem
        # One line, always: multi-line messages get mangled by twistd and log collectors.
        super().__init__(" ".join(line.split()))
