"""One exception type for bad user input, so every CLI can print one clear line."""

from __future__ import annotations


class UserError(Exception):
    """Input a user can fix: the message names the problem and the fix."""
