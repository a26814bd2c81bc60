"""Dashboard: one CloudWatch dashboard of the pair, named after the name prefix (body: renderers/dashboard.py).
Exposes: name."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from apim_active_active import aws
from apim_active_active.names import resource_name


@dataclass(frozen=True)
class DashboardProps:
    name_prefix: str
    body: str  # renderers.dashboard.dashboard_body(): JSON, Terraform references inside


class Dashboard(Construct):
    def __init__(self, scope: Construct, id_: str, props: DashboardProps) -> None:
        super().__init__(scope, id_)
        dashboard = aws.cloudwatch_dashboard.CloudwatchDashboard(
            self, "dashboard", dashboard_name=resource_name(props.name_prefix, "pair"), dashboard_body=props.body
        )
        self.name: str = dashboard.dashboard_name
