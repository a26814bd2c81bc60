"""Which of customization.deployment_toml's keys the pair owns, decided against what it renders for every node (both
pair nodes, the gateway group's): the settings' cross-check, so that every command refuses them before anything runs."""

from __future__ import annotations

from apim_active_active.renderers.deployment_toml import pair_document
from apim_active_active.renderers.gateway_toml import gateway_document
from apim_active_active.renderers.overlay import refusals
from apim_active_active.settings import Settings

# What only an apply knows does not change which keys are rendered.
ANY_HOST, ANY_PORT, ANY_NAME = "database.invalid", 1, "load-balancer.invalid"


def overlay_refusals(settings: Settings) -> list[tuple[str, str]]:
    """(dotted key, why) for each overlay key refused (renderers/overlay.py's rules)."""
    documents = [pair_document(settings, index, ANY_HOST, ANY_PORT, ANY_NAME) for index in (0, 1)]
    if settings.gateway_scale_out:
        documents.append(gateway_document(settings, ANY_HOST, ANY_PORT, ANY_NAME))
    return refusals(settings.customization.deployment_toml, documents)
