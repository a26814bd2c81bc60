"""Each node's user data (and the gateway scale-out group's), rendered by the (cdktf-free) renderers with what only an
apply knows as placeholders, then swapped for Terraform references: the user data is one base64gzip("...") expression
(EC2 takes at most 16 KB; Terraform gzips it, cloud-init unzips it), and cdktf would render a token inside it without
its ${}. The boot steps themselves are objects in the stack's boot bucket (boot_steps), which the user data's loader
fetches."""

from __future__ import annotations

from dataclasses import fields, replace

from cdktf import DefaultTokenResolver, StringConcat, TerraformStack, Token, Tokenization

from apim_active_active.renderers.boot_loader import asset_key
from apim_active_active.renderers.boot_script import Deployed, node_boot_script, render_user_data
from apim_active_active.renderers.gateway_user_data import gateway_boot_script, render_gateway_user_data
from apim_active_active.settings import Settings
from apim_active_active.terraform_text import base64gzip_of, embed

PLACEHOLDERS = Deployed(
    efs_id="@@EFS_ID@@",
    db_host="@@DB_HOST@@",
    db_port=0,
    db_secret_arn="@@DB_SECRET_ARN@@",
    admin_secret_arn="@@ADMIN_SECRET_ARN@@",
    keystore_secret_arn="@@KEYSTORE_SECRET_ARN@@",
    lb_dns_name="@@LB_DNS_NAME@@",
    db_app_secret_arn="@@DB_APP_SECRET_ARN@@",
    stack_key_arn="@@STACK_KEY_ARN@@",
    encryption_key_secret_arn="@@ENCRYPTION_KEY_SECRET_ARN@@",
    boot_bucket="@@BOOT_BUCKET@@",
)


def boot_steps(settings: Settings) -> dict[str, tuple[str, str]]:
    """Every boot step the stack's nodes fetch, by whose it is (the pair's; the gateway group's): its key in the boot
    bucket and its text."""
    steps = {"pair": node_boot_script(settings), **({"gateway": gateway_boot_script(settings)} if settings.gateway_scale_out else {})}
    return {role: (asset_key(step), step) for role, step in steps.items()}


class NodeUserData:
    """known: what only an apply knows, by Deployed field (a token, or a plain value such as an existing database's
    host); None where this stack has no such thing (rendered empty). db_port is known at synth."""

    def __init__(self, stack: TerraformStack, settings: Settings, known: dict[str, str | None], db_port: int) -> None:
        missing = {f.name for f in fields(Deployed)} - {"db_port"} - known.keys()
        if missing:
            raise ValueError(f"no value for {sorted(missing)}")
        self._settings = settings
        self._placeholders = replace(PLACEHOLDERS, db_port=db_port, **{field: "" for field, token in known.items() if token is None})
        self._references = {getattr(PLACEHOLDERS, field): _reference(stack, token) for field, token in known.items() if token is not None}

    def of_node(self, index: int) -> str:
        """The base64gzip expression of node index's cloud-config."""
        rendered = render_user_data(self._settings, index, self._placeholders)
        return base64gzip_of(embed(rendered, self._references))

    def of_gateway(self) -> str:
        """The base64gzip expression of the gateway scale-out group's cloud-config (every node of the group's): the
        pair's references it names (not the content sync's, nor the RDS master secret's: a gateway makes no schema)."""
        rendered = render_gateway_user_data(self._settings, self._placeholders)
        references = {p: r for p, r in self._references.items() if p in rendered}  # the content sync's are not
        return base64gzip_of(embed(rendered, references))


def _reference(stack: TerraformStack, token: str) -> str:
    """A resource attribute's token as the Terraform reference text it stands for (`${aws_x.y.attr}`); a plain value
    (an existing database's host) as it is."""
    if not Token.is_unresolved(token):
        return token
    resolved = Tokenization.resolve(token, scope=stack, preparing=False, resolver=DefaultTokenResolver(StringConcat()))
    if not (isinstance(resolved, str) and resolved.startswith("${") and resolved.endswith("}")):
        raise ValueError(f"not a single Terraform reference: {resolved!r}")
    return resolved
