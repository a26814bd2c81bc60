import subprocess
import sys

from tests.conftest import ROOT


def test_readme_settings_table_is_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_docs.py"), "--check", str(ROOT / "README.md")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
