"""The rehearsal's look at log shipping: every file the CloudWatch agent is told to ship exists on a booted node."""

from __future__ import annotations


class LogShipping:
    def check_log_shipping(self) -> None:
        """Stub: filled in with issue 16's node side."""
