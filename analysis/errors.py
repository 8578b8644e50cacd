"""The one exception type for input a user can fix, so the CLI prints one line, no trace."""

from __future__ import annotations


class AnalysisError(Exception):
    """Input a user can fix; the message names the problem and the fix in one line."""
