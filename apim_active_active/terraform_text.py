"""Embedding rendered text in Terraform configuration (pure: no cdktf import)."""


def escape_template(text: str) -> str:
    """Make Terraform treat `${` and `%{` in rendered text literally (they are shell and TOML syntax)."""
    return text.replace("${", "$${").replace("%{", "%%{")


def embed(text: str, values: dict[str, str]) -> str:
    """Escape `text`, then put Terraform references in place of the given placeholders."""
    escaped = escape_template(text)
    for placeholder, value in values.items():
        if placeholder not in escaped:
            raise ValueError(f"placeholder {placeholder!r} is not in the rendered text")
        escaped = escaped.replace(placeholder, value)
    return escaped


_HCL_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
GZIP_CALL = ('${base64gzip("', '")}')


def base64gzip_of(template: str) -> str:
    """A Terraform expression that gzips and base64-encodes the template (its references resolved first):
    the template becomes an HCL quoted string, `\\`, `"` and control characters escaped, its `${...}`
    references and `$${` escapes kept as they are."""
    return GZIP_CALL[0] + "".join(_HCL_ESCAPES.get(char, char) for char in template) + GZIP_CALL[1]


def template_of_base64gzip(expression: str) -> str:
    """The template inside base64gzip_of()'s expression (for readers of the synthesized JSON)."""
    start, end = GZIP_CALL
    if not (expression.startswith(start) and expression.endswith(end)):
        raise ValueError("not a base64gzip(...) expression")
    quoted, text, index = expression[len(start) : -len(end)], [], 0
    unescape = {value[1]: key for key, value in _HCL_ESCAPES.items()}
    while index < len(quoted):
        if quoted[index] == "\\":
            text.append(unescape[quoted[index + 1]])
            index += 2
        else:
            text.append(quoted[index])
            index += 1
    return "".join(text)
