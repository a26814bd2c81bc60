"""`make` on a machine with or without the provider mirror (Makefile's terraformrc rule run for real): the mirror is
used only when present or named; a named one that does not hold the provider is refused by name; without one,
Terraform installs the provider from its registry, the ordinary way."""

from __future__ import annotations

import subprocess

from tests.conftest import ROOT

PROVIDER = "registry.terraform.io/hashicorp/aws"


def make_terraformrc(tmp_path, **variables: str) -> tuple[subprocess.CompletedProcess, str]:
    tools = tmp_path / "tools"
    result = subprocess.run(
        ["make", "-s", "-C", str(ROOT), f"TOOLS={tools}", f"{tools}/terraformrc", *(f"{k}={v}" for k, v in variables.items())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    rc = tools / "terraformrc"
    return result, rc.read_text() if rc.exists() else ""


def test_no_mirror_means_the_registry(tmp_path):
    result, config = make_terraformrc(tmp_path, DEFAULT_MIRROR=str(tmp_path / "nowhere"))
    assert result.returncode == 0, result.stderr
    assert "filesystem_mirror" not in config and "provider_installation" not in config


def test_a_mirror_present_at_the_default_place_is_used(tmp_path):
    (tmp_path / "mirror" / PROVIDER).mkdir(parents=True)
    result, config = make_terraformrc(tmp_path, DEFAULT_MIRROR=str(tmp_path / "mirror"))
    assert result.returncode == 0, result.stderr
    assert f'path    = "{tmp_path / "mirror"}"' in config and f'exclude = ["{PROVIDER}"]' in config


def test_a_named_mirror_without_the_provider_is_refused_by_name(tmp_path):
    result, config = make_terraformrc(tmp_path, TF_PROVIDER_MIRROR=str(tmp_path / "empty"))
    assert result.returncode != 0 and config == ""
    assert f"TF_PROVIDER_MIRROR={tmp_path / 'empty'} holds no {PROVIDER}" in result.stderr


def _local_aws(**env: str) -> str:
    """What `make demo` puts before every command it runs against the emulator."""
    return subprocess.run(
        ["make", "-s", "-C", str(ROOT), "--eval", "show: ; @echo $(LOCAL_AWS)", "show"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", **env},
        timeout=60,
    ).stdout


def test_make_demo_honours_the_callers_aws_endpoint_url():
    assert "AWS_ENDPOINT_URL=http://127.0.0.1:4999 " in _local_aws(AWS_ENDPOINT_URL="http://127.0.0.1:4999")
    assert "AWS_ENDPOINT_URL=http://127.0.0.1:4566 " in _local_aws()
