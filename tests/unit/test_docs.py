import re
import subprocess
import sys

from tests.conftest import ROOT


def test_settings_table_is_current():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "settings_docs.py"), "--check", str(ROOT / "docs" / "settings.md")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_the_readme_is_a_short_front_door_and_every_link_stays_in_the_repository():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) < 12_000, "the depth lives in docs/"
    assert "make demo" in readme and "make test" in readme
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#]+)", page.read_text()):
            assert not re.match(r"[a-z]+://", target), f"{page.name}: {target} points outside the repository"
            assert (page.parent / target).resolve().is_relative_to(ROOT), f"{page.name}: {target} is outside"
            assert (page.parent / target).exists(), f"{page.name}: {target} does not exist"
