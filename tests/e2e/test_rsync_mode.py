"""content_sync = "rsync" against the emulator: `local` switched to rsync (its own name prefix), deployed with
cdktf at the same time as the shared EFS deployment (each in its own emulator) and read back with boto3; verify's rsync
check failing until both nodes' keys are in their parameters; a plan showing nothing to do. The destroy is checked in test_teardown.py."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from apim_active_active.renderers import rsync
from scripts import commands
from scripts.show_deployment import user_data_files
from scripts.verify import KEYS_CHECK
from tests.e2e.conftest import DEPLOY_SECONDS, RSYNC_PREFIX, STACK, client, destroy_rsync_deployment
from tests.helpers import results_of, verify

pytestmark = pytest.mark.e2e


def _verify(rsync_deployment) -> dict:
    return results_of(verify(rsync_deployment, "--skip-http")[0])


def test_rsync_mode_deploys_without_a_share_with_ssh_from_node_1_to_node_2_only(rsync_deployment, rsync_emulator, tmp_path):
    result, seconds = rsync_deployment["deployed"].result(timeout=DEPLOY_SECONDS)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    print(f"\n[timing] scripts/roll.py {STACK}, a first deploy (rsync, beside the EFS deploy): {seconds:.1f}s")
    events = [(e["node"], e["event"].split(" (")[0]) for e in json.loads(result.stdout)["events"]]
    assert events == [(0, "settings applied with both nodes held; node 1 and 2 created"), (1, "gate passed"), (2, "gate passed")]
    try:
        ec2, ssm, efs = client("ec2", rsync_emulator), client("ssm", rsync_emulator), client("efs", rsync_emulator)
        outputs = json.loads(rsync_deployment["outputs_file"].read_text())[STACK]
        assert "efs_id" not in outputs
        vpc = outputs["vpc_id"]
        assert efs.describe_file_systems()["FileSystems"] == []

        groups = {g["GroupName"]: g for g in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]}
        sender, receiver = groups[f"{RSYNC_PREFIX}-rsync-sender"], groups[f"{RSYNC_PREFIX}-rsync-receiver"]
        pairs = lambda permissions: [(p["FromPort"], [u["GroupId"] for u in p["UserIdGroupPairs"]]) for p in permissions]  # noqa: E731
        assert pairs(receiver["IpPermissions"]) == [(22, [sender["GroupId"]])]
        assert pairs(sender["IpPermissionsEgress"]) == [(22, [receiver["GroupId"]])]
        assert not [
            p
            for g in groups.values()
            if g not in (sender, receiver)
            for p in g["IpPermissions"] + g["IpPermissionsEgress"]
            if p.get("FromPort") == 22
        ]
        assert not [p for g in groups.values() for p in g["IpPermissions"] + g["IpPermissionsEgress"] if p.get("FromPort") == 2049], (
            "no NFS without a share"
        )

        ids = outputs["instance_ids"]
        # moto does not report an instance's groups (an emulator gap): read what Terraform attached from the state.
        state = json.loads((rsync_deployment["work"] / "state" / f"{STACK}.tfstate").read_text())
        attached = {
            i["attributes"]["id"]: set(i["attributes"]["vpc_security_group_ids"])
            for r in state["resources"]
            if r["type"] == "aws_instance"
            for i in r["instances"]
        }
        assert sender["GroupId"] in attached[ids[0]] and receiver["GroupId"] not in attached[ids[0]]
        assert receiver["GroupId"] in attached[ids[1]] and sender["GroupId"] not in attached[ids[1]]
        node_env = [user_data_files(ec2, i)["/etc/wso2am/node.env"] for i in ids]
        assert [re.search(r"^SYNC_ROLE=(\w+)$", env, re.M).group(1) for env in node_env] == ["manager", "worker"]
        assert rsync.RSYNCD_CONF in user_data_files(ec2, ids[1])

        names = [f"/{RSYNC_PREFIX}/rsync/manager-key", f"/{RSYNC_PREFIX}/rsync/worker-host-key"]
        parameters = ssm.get_parameters(Names=names, WithDecryption=True)["Parameters"]
        assert sorted((p["Name"], p["Type"]) for p in parameters) == [(n, "SecureString") for n in names]

        waiting = _verify(rsync_deployment)[KEYS_CHECK]
        assert waiting["status"] == "fail" and names[0] in waiting["detail"], waiting
        # What the nodes do at first boot: each writes its public key (node 1 last, once the secrets exist).
        for name in names:
            key = tmp_path / name.rsplit("/", 1)[1]
            commands.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], timeout=60)
            ssm.put_parameter(Name=name, Value=(tmp_path / f"{key.name}.pub").read_text().strip(), Type="SecureString", Overwrite=True)
        checks = _verify(rsync_deployment)
        assert checks[KEYS_CHECK]["status"] == "pass", checks
        assert {c["status"] for c in checks.values()} <= {"pass", "skip"}, checks

        # The keys the nodes wrote are not Terraform's to put back: a plan shows nothing to do.
        plan = subprocess.run(
            ["terraform", "plan", "-detailed-exitcode", "-input=false", "-lock=false", "-no-color"],
            cwd=rsync_deployment["outdir"] / "stacks" / STACK,
            env=rsync_deployment["env"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-2000:]
    finally:
        destroy_rsync_deployment(rsync_deployment)
