"""Embedding rendered text in Terraform configuration (pure: no cdktf import)."""


def escape_template(text: str) -> str:
    """Make Terraform treat `${` and `%{` in rendered text literally (they are shell and TOML syntax)."""
    return text.replace("${", "$${").replace("%{", "%%{")


def embed(text: str, values: dict[str, str]) -> str:
    """Escape `text`, then put Terraform references (tokens) in place of the given placeholders."""
    escaped = escape_template(text)
    for placeholder, value in values.items():
        if placeholder not in escaped:
            raise ValueError(f"placeholder {placeholder!r} is not in the rendered text")
        escaped = escaped.replace(placeholder, value)
    return escaped
