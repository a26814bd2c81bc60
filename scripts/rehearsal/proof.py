"""The rehearsal's run of scripts/prove.py against the stand-in product on both nodes."""

from __future__ import annotations


class Proof:
    def prove_active_active(self) -> None:
        """Stub: filled in with issue 16's proof."""
