"""The ids the alarms and the dashboard watch, as Terraform references (renderers.alarms.Observed)."""

from __future__ import annotations

from apim_active_active.constructs.database import Database
from apim_active_active.constructs.load_balancer import LoadBalancer
from apim_active_active.constructs.node import Node
from apim_active_active.constructs.shared_fs import SharedFileSystem
from apim_active_active.renderers.alarms import Observed


def observed_ids(balancer: LoadBalancer, database: Database, share: SharedFileSystem | None, nodes: list[Node]) -> Observed:
    return Observed(
        load_balancer=balancer.arn_suffix,
        target_groups=tuple(balancer.target_group_arn_suffixes.items()),
        instance_ids=tuple(n.instance_id for n in nodes),
        database_id=database.identifier,
        file_system_id=share.file_system_id if share else None,
        certificate_arn=balancer.certificate_arn,
    )
