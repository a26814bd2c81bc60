"""The boot rehearsals, each run once (the EFS mode and the rsync mode at the same time, so that they share the
emulators' waits): each check and each fault is a test of its own."""

from __future__ import annotations

import os

import pytest

from scripts.rehearsal.brought_keystore import BROUGHT_CHECK
from scripts.rehearsal.customization import NODE_CHECKS, REFUSED
from scripts.rehearsal.gateway_node import GATEWAY_CHECKS
from scripts.rehearsal.replacement import REPLACED_SECRETS
from scripts.rehearsal.rotation import ROTATION_CHECKS
from scripts.rehearsal.vault import AGREE, READ, SEALED
from tests.rehearsal import background

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="the rehearsal needs root (network and mount namespaces); CI has it"),
]


def replaced(number: str) -> list[tuple[str, str]]:
    """The checks of one node's replacement (the roll's move), in both modes."""
    other = "2" if number == "1" else "1"
    return [
        (
            f"node {number} replaced: node {other} answered 9443 at every probe (from the load balancer's place, every 1s) "
            "while it was destroyed and booted again",
            other,
        ),
        ("replaced on a fresh disk from its user data with a changed setting: the boot step completed", number),
        (REPLACED_SECRETS, number),
        ("replaced node did not reseed the share (seed markers as before) nor run the schema (tables as before)", number),
        ("replaced node answers 9443 (probed from the peer) and its gate (wso2am-boot gate) passes", number),
    ]


# The log-shipping checks of both booted nodes, in both modes.
OBSERVED = [
    (name, number)
    for name in (
        "log shipping: every file the agent is told to ship is on the node, and the agent started with that configuration",
        "log rotation: API-M's shipped logs carry log4j2's Delete action (age-bounded)",
        "JMX: started on loopback in API-M's running process by the unit's ExecStartPost (jcmd ManagementAgent.start as "
        "its user), not through the environment the start script hands to every JVM",
    )
    for number in ("1", "2")
]


# The restore drill (EFS, last): a second pair booted from the first's backups as a restored environment.
RESTORED = [
    ("restored pair: the boot waited for the share's restore, then completed", "1"),
    ("restored pair: the boot waited for the share's restore, then completed", "2"),
    ("restored share: AWS Backup's restore into the new file system (restore.py), moved into place once, not seeded", "both"),
    ("restored pair holds what was written before the backup: the file on the share, the rows in the database", "both"),
    ("restored pair read the source's secrets: none generated, each node's API-M resolved the source's values", "both"),
    ("restored pair did not run the schema again: the restored database's tables kept", "both"),
    *[
        (
            "restored node rebuilds the search index once: its solr folder removed before API-M's first start, "
            "[indexing] re_indexing = 1 read by API-M, the rebuilt index kept at the next boot",
            number,
        )
        for number in ("1", "2")
    ],
    ("restored pair answers 9443 (probed from the peer)", "1"),
    ("restored pair answers 9443 (probed from the peer)", "2"),
]


# A node of the gateway scale-out group (local has gateway_scale_out), EFS mode: booted once the pair has, then node 1
# stopped under it (scripts/rehearsal/gateway_node.py, where each name is spelled out).
GATEWAY = [(name, "gw") for name in GATEWAY_CHECKS]


# The escape hatches local turns on (scripts/rehearsal/customization.py, where each name is spelled out): on both pair
# nodes and the gateway node, and an overlay key the pair owns refused by the synth entry point.
CUSTOMIZED = [*((name, node) for name in NODE_CHECKS for node in ("1", "2", "gw")), (REFUSED, "synth")]


EXPECTED = [
    ("no node seeded while another held the seed lock", "both"),
    ("first boot completed (cloud-init write_files, runcmd, then its script)", "1"),
    ("first boot completed (cloud-init write_files, runcmd, then its script)", "2"),
    (
        "deployment.toml where API-M reads it: the product's own file with the pair's settings merged over it (the "
        "shipped one kept beside it)",
        "1",
    ),
    (
        "deployment.toml where API-M reads it: the product's own file with the pair's settings merged over it (the "
        "shipped one kept beside it)",
        "2",
    ),
    ("share mounted at /mnt/wso2am-share, and userstores, tenants bound from it", "1"),
    ("share mounted at /mnt/wso2am-share, and userstores, tenants bound from it", "2"),
    ("mount retried while the share was unreachable (5s), then succeeded", "1"),
    ("mount retried while the share was unreachable (5s), then succeeded", "2"),
    ("systemd unit and share watch timer installed and enabled: start script, user, restart policy", "1"),
    ("systemd unit and share watch timer installed and enabled: start script, user, restart policy", "2"),
    ("service started", "1"),
    ("service started", "2"),
    ("share seeded exactly once though both booted together: userstores, tenants, with the distribution's files", "both"),
    ("a file written on node 1 in each shared folder (userstores, tenants) is seen on node 2", "1->2"),
    ("outside the shared folders, deployment/server stays each node's own (webapps)", "1->2"),
    ("reached the peer's 9611, 9711 and 5672", "1"),
    ("reached the peer's 9611, 9711 and 5672", "2"),
    ("9443 answers (probed from the peer)", "1"),
    ("9443 answers (probed from the peer)", "2"),
    ("the load balancer's health checks pass and its target ports take TLS (probed from the peer)", "1"),
    ("the load balancer's health checks pass and its target ports take TLS (probed from the peer)", "2"),
    ("the public name apim.local.test stays on the node (hosts file) and answers there", "1"),
    ("the public name apim.local.test stays on the node (hosts file) and answers there", "2"),
    ("no route out of the node namespaces", "both"),
    ("admin password, keystore and API-M's database password generated once for the pair", "both"),
    ("schema scripts ran once for the pair, into both databases", "both"),
    (SEALED, "1"),
    (SEALED, "2"),
    ("JDBC driver in repository/components/lib", "1"),
    ("JDBC driver in repository/components/lib", "2"),
    ("API-M logs in as its own database user (not the RDS master) over TLS and sees both schemas", "1"),
    ("API-M logs in as its own database user (not the RDS master) over TLS and sees both schemas", "2"),
    (READ, "1"),
    (READ, "2"),
    ("the same keystore on both nodes", "both"),
    (AGREE, "both"),
    (
        "the truststore holds the pair's certificate under gateway_certificate_alias (API keys and internal keys signed "
        "with the pair's key validate)",
        "1",
    ),
    (
        "the truststore holds the pair's certificate under gateway_certificate_alias (API keys and internal keys signed "
        "with the pair's key validate)",
        "2",
    ),
    ("the pair's certificate is valid for apim.keystore_validity_days (3650 days)", "both"),
    (BROUGHT_CHECK, "1"),  # local's brought keystore (scripts/rehearsal/brought_keystore.py)
    (BROUGHT_CHECK, "2"),
    (
        "the database server has MySQL 8's utf8mb4; both databases are latin1 (case-sensitive), so the schema's 4.2+ "
        "key (IDN_OAUTH2_TOKEN_BINDING) was created",
        "both",
    ),
    ("node 2's first start waited until node 1's API-M answered; node 1 did not wait", "2"),
    ("no secret value in user data, cdk.tf.json, Terraform state or logs", "all"),
    *OBSERVED,
    ("prove: the pair acts as one (API on node 2, revocation and throttling reach node 2) and leaves nothing", "both"),
    ("prove: node 2 dropping revocations fails the revocation step, and cleanup still runs", "2"),
    ("second boot (as on reboot) duplicates nothing: fstab, user, unit, seeding, mount, service, secrets, schema, hosts", "1"),
    ("second boot (as on reboot) duplicates nothing: fstab, user, unit, seeding, mount, service, secrets, schema, hosts", "2"),
    ("after a reboot's cloud-init (update_etc_hosts) apim.local.test still resolves to the node itself", "1"),
    ("after a reboot's cloud-init (update_etc_hosts) apim.local.test still resolves to the node itself", "2"),
    ("a stale wso2carbon.pid naming a live process does not keep API-M from starting", "1"),
    ("node 1 stopped: node 2 keeps answering on 9443", "2"),
    *GATEWAY,
    *CUSTOMIZED,
    *ROTATION_CHECKS,  # scripts/rehearsal/rotation.py, where each name is spelled out
    ("share lost while running: the share watch stops API-M before it can undeploy anything", "2"),
    ("share back: the share watch re-mounts it and starts API-M again", "2"),
    (
        'share missing at a reboot: API-M\'s start fails, the share watch holds it ("did not start at this boot") '
        "and keeps it stopped while the share is unreachable",
        "2",
    ),
    ("share back after that reboot: the share watch re-mounts what /etc/fstab lists and starts API-M", "2"),
    *replaced("1"),
    *replaced("2"),
    ("broken deployment.toml: boot fails before API-M starts and says which file and line", "1"),
    *RESTORED,
]


EXPECTED_RSYNC = [
    ("first boot completed (cloud-init write_files, runcmd, then its script)", "1"),
    ("first boot completed (cloud-init write_files, runcmd, then its script)", "2"),
    *OBSERVED,
    ("node 2 holds API-M until node 1's first push has landed", "2"),
    ("node 1 (the manager) started API-M", "1"),
    ("node 1 published its key after its secrets and schema; node 2 authorized it, then booted", "both"),
    ("node 2 authorizes one key, from node 1 only, for the rsync daemon only", "2"),
    ("node 1's key runs nothing but rsync on node 2 (`ssh node2 id` gets no shell)", "1->2"),
    ("the push service's command succeeds (as its timer runs it)", "1->2"),
    ("first push landed: the share watch starts API-M on node 2, and it answers 9443", "2"),
    ("a file written on node 1 reaches node 2 within the timer period (15s)", "1->2"),
    ("a file written on node 2 does not travel back (and node 1's next push removes it there)", "2->1"),
    ("what arrives on node 2 is the receiving user's, readable and writable by API-M's group", "2"),
    ("node 1's private key stays on node 1 (0600); only its public key is in SSM", "1"),
    ("second boot duplicates nothing: timers, keys, authorized_keys, users, hosts", "1"),
    ("second boot duplicates nothing: timers, keys, authorized_keys, users, hosts", "2"),
    ("node 1 stopped: node 2 keeps answering on 9443", "2"),
    *replaced("1"),
    *replaced("2"),
]
MODES = {"efs": EXPECTED, "rsync": EXPECTED_RSYNC}


@pytest.fixture(scope="module")
def checks():
    return background.checks()  # started when the session was collected (tests/conftest.py)


@pytest.mark.parametrize("mode", MODES)
def test_rehearsal_reports_exactly_the_expected_checks(checks, mode):
    assert sorted(checks[mode]) == sorted(MODES[mode]), [c for c in checks[mode].values() if not c.passed]


@pytest.mark.parametrize(
    "mode, name, node",
    [(m, n, k) for m, expected in MODES.items() for n, k in expected],
    ids=[f"{m}: {n}[node {k}]" for m, expected in MODES.items() for n, k in expected],
)
def test_check(checks, mode, name, node):
    check = checks[mode].get((name, node))
    assert check is not None, f"check missing: {name} (node {node})"
    assert check.passed, check.detail
