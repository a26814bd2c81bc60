"""What keeps an environment from being destroyed, as data (no cdktf): the settings that protect it,
and the message `cdktf destroy` stops with while any of them is on."""

from __future__ import annotations

from apim_active_active.settings import Settings


def protections_on(settings: Settings) -> list[str]:
    """The protective settings that are on, by their dotted names."""
    on = {
        "database.deletion_protection": settings.database.existing is None and settings.database.deletion_protection,
        "node.termination_protection": settings.node.termination_protection,
        "shared_fs.retain_on_destroy": settings.uses_efs and settings.shared_fs.retain_on_destroy,
        "load_balancer.deletion_protection": settings.load_balancer.deletion_protection,
        "backup.retain_on_destroy": settings.backup.holds_recovery_points and settings.backup.retain_on_destroy,
    }
    return [name for name, value in on.items() if value]


def destroy_refusal(settings: Settings, environment: str) -> str:
    """Empty when the environment may be destroyed; else what to change, step by step."""
    on = protections_on(settings)
    if not on:
        return ""
    return (
        f"cdktf destroy {environment} refused: the environment is protected by {', '.join(on)}. "
        f"Nothing was deleted. To tear it down: set {' and '.join(f'{name} = false' for name in on)} "
        f"in environments/{environment}.toml, run cdktf deploy {environment} (lifts the protections), "
        f"then cdktf destroy {environment}."
    )
