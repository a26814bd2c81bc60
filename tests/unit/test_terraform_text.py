import pytest

from apim_active_active.terraform_text import embed, escape_template


def test_shell_and_toml_syntax_is_escaped():
    assert escape_template('a=${B} %{ if } ${mgt.port}') == 'a=$${B} %%{ if } $${mgt.port}'


def test_embed_puts_references_in_after_escaping():
    assert embed("X=@@P@@ Y=${Y}", {"@@P@@": "${aws_efs_file_system.fs.dns_name}"}) == (
        "X=${aws_efs_file_system.fs.dns_name} Y=$${Y}"
    )


def test_embed_refuses_a_missing_placeholder():
    with pytest.raises(ValueError, match="@@P@@"):
        embed("nothing here", {"@@P@@": "x"})
