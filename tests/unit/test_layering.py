"""Settings and renderers stay pure: importing them loads no cdktf, jsii or provider module."""

import re
import subprocess
import sys

from tests.conftest import ROOT


def test_renderers_and_settings_import_no_cdktf():
    code = (
        "import sys\n"
        "import apim_active_active.settings, apim_active_active.renderers.boot_script, apim_active_active.terraform_text\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('cdktf', 'constructs', 'jsii', 'cdktf_cdktf_provider_aws'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_cdktf_imports_live_only_in_constructs_stacks_and_aws_module():
    allowed = {"aws.py", "constructs", "stacks"}
    offenders = []
    for path in (ROOT / "apim_active_active").rglob("*.py"):
        relative = path.relative_to(ROOT / "apim_active_active")
        if relative.parts[0] in allowed:
            continue
        if re.search(r"^\s*(import|from) (cdktf|constructs|jsii)\b", path.read_text(), re.MULTILINE):
            offenders.append(str(relative))
    assert offenders == []


def test_port_numbers_live_in_one_place():
    """The pair's ports are apim_active_active/ports.py's: no other module writes one as a number."""
    import ast

    from apim_active_active import ports

    # (80 is left out: as a number it is more often something else, a percentage)
    numbers = {value for name, value in vars(ports).items() if name.isupper() and isinstance(value, int)} - {ports.HTTP}
    offenders = []
    for path in (ROOT / "apim_active_active").rglob("*.py"):
        if path.name == "ports.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and type(node.value) is int and node.value in numbers:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value}")
    assert offenders == []


def test_constructs_take_their_own_part_of_the_settings_never_the_whole():
    """A construct's props name the settings part it uses (DatabaseSettings, ...); only the stack reads Settings."""
    import ast

    offenders = []
    for path in (ROOT / "apim_active_active" / "constructs").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "apim_active_active.settings":
                offenders += [f"{path.name}: {a.name}" for a in node.names if a.name in ("Settings", "*")]
            elif isinstance(node, ast.ImportFrom) and node.module == "apim_active_active":
                offenders += [f"{path.name}: the settings module" for a in node.names if a.name == "settings"]
            elif isinstance(node, ast.Import):
                offenders += [f"{path.name}: {a.name}" for a in node.names if a.name == "apim_active_active.settings"]
    assert offenders == []


def test_no_test_module_imports_another():
    """Shared test code lives in tests/helpers.py (and fixtures in the conftest files), not in test modules."""
    offenders = [
        f"{path.relative_to(ROOT)}: {line}"
        for path in (ROOT / "tests").rglob("test_*.py")
        for line in path.read_text().splitlines()
        if re.match(r"^\s*(from|import) tests\.\w+\.test_", line)
    ]
    assert offenders == []
