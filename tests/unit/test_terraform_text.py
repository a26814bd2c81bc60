import pytest

from apim_active_active.terraform_text import embed, escape_template


def test_shell_and_toml_syntax_is_escaped():
    assert escape_template("a=${B} %{ if } ${mgt.port}") == "a=$${B} %%{ if } $${mgt.port}"


def test_embed_puts_references_in_after_escaping():
    assert embed("X=@@P@@ Y=${Y}", {"@@P@@": "${aws_efs_file_system.fs.dns_name}"}) == ("X=${aws_efs_file_system.fs.dns_name} Y=$${Y}")


def test_embed_refuses_a_missing_placeholder():
    with pytest.raises(ValueError, match="@@P@@"):
        embed("nothing here", {"@@P@@": "x"})


def test_base64gzip_expression_keeps_references_live_and_escapes_literal():
    from apim_active_active.terraform_text import base64gzip_of, template_of_base64gzip

    template = 'a "quoted" \\ line\n\tEFS_ID=${aws_efs_file_system.x.id} HOME=$${HOME} %%{x}'
    expression = base64gzip_of(template)
    assert expression.startswith('${base64gzip("') and expression.endswith('")}')
    assert "\n" not in expression and '\\"quoted\\"' in expression and "${aws_efs_file_system.x.id}" in expression
    assert template_of_base64gzip(expression) == template
