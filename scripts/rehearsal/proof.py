"""The rehearsal's run of scripts/prove.py against the stand-in product on both nodes: through the rehearsal's node
shell, the same steps and node program as on AWS. Once as deployed (it must pass and leave nothing behind), once with
node 2's stand-in dropping the revocation events it receives (it must fail naming that step, and still clean up)."""

from __future__ import annotations

import json

from apim_active_active.versions import rest_apis, traits
from scripts.on_node import RehearsalShell
from scripts.prove import CLEANUP, REHEARSAL_BOUNDS, REVOKE, Prover
from scripts.rehearsal.standin.standin_api import DROP_REVOCATIONS

PROVE_PASSES = "prove: the pair acts as one (API on node 2, revocation and throttling reach node 2) and leaves nothing"
PROVE_NAMES_DROPPED_REVOCATION = "prove: node 2 dropping revocations fails the revocation step, and cleanup still runs"


class Proof:
    def prove_active_active(self) -> None:
        shell = RehearsalShell(self.nodes, self.boot_env())
        version = self.settings.apim.version
        prove = lambda run: Prover(  # noqa: E731
            shell, rest_apis(version), traits(version).gateway_environment_name, REHEARSAL_BOUNDS, run
        ).prove()
        results = prove("prove-rehearsal1")
        left = self.left_by("prove-rehearsal1")
        failed = [f"{r.check}: {r.detail}" for r in results if r.status != "pass"]
        self.check(PROVE_PASSES, "both", not failed and not left, "; ".join(failed + left) or f"{len(results)} steps passed")
        marker = self.nodes[1].path(f"{self.settings.apim.home}/{DROP_REVOCATIONS}")
        marker.write_text("rehearsal: drop the revocation events this node receives\n")
        try:
            results = prove("prove-rehearsal2")
        finally:
            marker.unlink()
        left = self.left_by("prove-rehearsal2")
        by_step = {r.check: r for r in results}
        named = [r.check for r in results if r.status == "fail"] == [REVOKE]
        self.check(
            PROVE_NAMES_DROPPED_REVOCATION,
            "2",
            named and by_step[CLEANUP].status == "pass" and not left,
            "; ".join(f"{r.check}: {r.status} {r.detail}" for r in results) + (f"; left: {left}" if left else ""),
        )

    def left_by(self, run: str) -> list[str]:
        """What a run's names still name on either node's stand-in (its state as it shows it, by name)."""
        left = []
        for number, node in enumerate(self.nodes, 1):
            path = node.path(f"{self.settings.apim.home}/repository/logs/standin-api.json")
            shown = json.loads(path.read_text()) if path.exists() else {}
            left += [
                f"node {number} {kind}: {name}"
                for kind in ("apis", "applications", "policies", "clients")
                for name in shown.get(kind, [])
                if name.startswith(run)
            ]
        return left
