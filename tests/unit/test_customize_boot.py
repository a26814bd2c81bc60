"""The boot step's customization part (customize.sh) run for real, sourced in bash with stand-ins for aws (S3 from a
folder) and chown, in a temp folder as the product's home: JAVA_OPTS for the start script, each extra jar where WSO2
puts it (a bundle in dropins, any other jar in lib) and refused on another sha256, the post-boot hook's output in the
boot log and a failing hook stopping the boot before API-M starts; and how it is shipped: only to customized nodes,
called only there, shellcheck-clean, within EC2's 16 KB with every customization on."""

from __future__ import annotations

import copy
import gzip
import hashlib
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from apim_active_active.renderers import boot_script
from apim_active_active.renderers.gateway_user_data import gateway_boot_script, render_gateway_user_data
from apim_active_active.settings import Settings, parse_settings
from tests.conftest import DEPLOYED, local_settings_dict
from tests.helpers import restored_local_dict

BUNDLE, PLAIN = "acme-bundle-1.0.jar", "acme-plain-2.0.jar"
HOOK_URL = "s3://acme-artifacts/hooks/post-boot.sh"
EC2_USER_DATA_LIMIT = 16 * 1024  # bytes, after Terraform's base64gzip's gzip


def jar(path: Path, bundle: bool) -> Path:
    manifest = "Manifest-Version: 1.0\r\n" + ("Bundle-ManifestVersion: 2\r\nBundle-SymbolicName: com.acme.bundle\r\n" if bundle else "")
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.writestr("META-INF/MANIFEST.MF", manifest)
        zipped.writestr("com/acme/Thing.class", "not really a class")
    return path


def customized_data(**customization) -> dict:
    """The local environment's settings data with this [customization] (and nothing else of local's that ships a
    part of its own)."""
    data = copy.deepcopy(local_settings_dict())
    data.pop("secure_vault", None)
    data["customization"] = customization
    return data


class CustomizedNode:
    """A pair node's boot step (node 1) in tmp_path: the product's home, S3 and the boot log in folders there."""

    def __init__(self, tmp_path: Path, hook: str | None = "#!/bin/bash\necho hook ran\n", bundle_sha: str | None = None):
        self.root = tmp_path
        for folder in ("bin", "s3", "state", "home/repository/components/lib"):
            (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        self.bundle = jar(tmp_path / "s3" / BUNDLE, bundle=True)
        self.plain = jar(tmp_path / "s3" / PLAIN, bundle=False)
        sha = bundle_sha or hashlib.sha256(self.bundle.read_bytes()).hexdigest()
        customization: dict = {
            "extra_jars": [{"url": f"s3://acme-artifacts/jars/{BUNDLE}", "sha256": sha}, {"url": f"s3://acme-artifacts/{PLAIN}"}],
            "jvm_options": ["-Dfile.encoding=UTF-8", "-XX:+UseG1GC"],
        }
        if hook is not None:
            (tmp_path / "s3" / "post-boot.sh").write_text(hook)
            customization["post_boot_hook"] = HOOK_URL
        self.settings = parse_settings(customized_data(**customization), environ={})
        stubs = {
            "aws": f'#!/bin/sh\necho "aws $*" >> {tmp_path}/calls\n'
            f'prev=; for a; do source=$prev; prev=$a; done; cp "{tmp_path}/s3/$(basename "$source")" "$prev"\n',
            "chown": f'#!/bin/sh\necho "chown $*" >> {tmp_path}/calls\n',
        }
        for name, text in stubs.items():
            (tmp_path / "bin" / name).write_text(text)
            (tmp_path / "bin" / name).chmod(0o755)
        self.home = tmp_path / "home"
        self.runtime_env = tmp_path / "runtime.env"
        self.runtime_env.write_text("JAVA_HOME=/usr/lib/jvm/java-17-amazon-corretto\nJVM_MEM_OPTS=-Xms1024m -Xmx1024m\n")
        overrides = f"APIM_HOME={self.home}\nRUNTIME_ENV={self.runtime_env}\n"
        (tmp_path / "node.env").write_text(boot_script.render_node_env(self.settings, DEPLOYED, 0) + overrides)
        self.script = tmp_path / "wso2am-boot"
        self.script.write_text(boot_script.node_boot_script(self.settings))
        self.boot_log = tmp_path / "state" / "boot.log"

    def run(self, commands: str) -> subprocess.CompletedProcess:
        env = {
            "PATH": f"{self.root / 'bin'}:/usr/bin:/bin",
            "NODE_ENV": str(self.root / "node.env"),
            "TMPDIR": str(self.root),
            "BOOT_LOG": str(self.boot_log),
            "HOOK_FILE": str(self.root / "state" / "post-boot-hook"),
            "BOOT_DONE": str(self.root / "state" / "boot-done"),
            "RETRY_TRIES": "2",
            "RETRY_MAX_DELAY": "1",
        }
        return subprocess.run(["bash", "-c", f'. "{self.script}"\n{commands}'], env=env, capture_output=True, text=True, timeout=60)

    def logged(self) -> list[str]:
        return [line.split(" wso2am-boot: ", 1)[1] for line in self.boot_log.read_text().splitlines()] if self.boot_log.exists() else []

    def calls(self) -> list[str]:
        path = self.root / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def components(self) -> dict[str, list[str]]:
        folder = self.home / "repository" / "components"
        return {sub.name: sorted(p.name for p in sub.iterdir()) for sub in sorted(folder.iterdir())}


def test_a_bundle_goes_to_dropins_any_other_jar_to_lib_each_the_os_users(tmp_path):
    node = CustomizedNode(tmp_path, hook=None)
    result = node.run("customize")
    assert result.returncode == 0, result.stderr
    assert node.components() == {"dropins": [BUNDLE], "lib": [PLAIN]}
    assert (node.home / "repository/components/dropins" / BUNDLE).read_bytes() == node.bundle.read_bytes()
    assert oct((node.home / "repository/components/lib" / PLAIN).stat().st_mode & 0o777) == "0o640"
    components = node.home / "repository" / "components"
    assert [call for call in node.calls() if call.startswith("chown")] == [
        f"chown wso2carbon:wso2carbon {components}/dropins",  # the pack had no dropins folder here: made API-M's user's
        f"chown wso2carbon:wso2carbon {components}/{BUNDLE}",
        f"chown wso2carbon:wso2carbon {components}/{PLAIN}",
    ]
    assert node.logged() == [f"installed {BUNDLE} in repository/components/dropins", f"installed {PLAIN} in repository/components/lib"]


def test_the_jvm_options_are_the_start_scripts_java_opts_once_a_boot(tmp_path):
    node = CustomizedNode(tmp_path, hook=None)
    before = node.runtime_env.read_text()
    assert node.run("customize").returncode == 0
    assert node.runtime_env.read_text() == before + "JAVA_OPTS=-Dfile.encoding=UTF-8 -XX:+UseG1GC\n"


def test_a_jar_not_the_one_its_sha256_names_stops_the_boot_and_nothing_is_installed(tmp_path):
    node = CustomizedNode(tmp_path, hook=None, bundle_sha="0" * 64)
    result = node.run("customize")
    assert result.returncode != 0
    actual = hashlib.sha256(node.bundle.read_bytes()).hexdigest()
    said = f"not starting API-M: s3://acme-artifacts/jars/{BUNDLE} has sha256 {actual}, not customization.extra_jars' {'0' * 64}"
    assert said in node.logged()
    assert node.components() == {"lib": []}, "neither this jar (nor its download) nor the ones after it"


def test_a_jar_already_in_place_is_kept_and_not_fetched_again(tmp_path):
    node = CustomizedNode(tmp_path, hook=None)
    assert node.run("customize").returncode == 0
    fetched = [call for call in node.calls() if call.startswith("aws s3 cp")]
    assert len(fetched) == 2
    assert node.run("customize").returncode == 0
    assert [call for call in node.calls() if call.startswith("aws s3 cp")] == fetched, "the second boot fetches nothing"


def test_the_hook_runs_with_its_environment_and_its_output_is_in_the_boot_log_line_by_line(tmp_path):
    hook = "\n".join(
        [
            "#!/bin/bash",
            'echo "home=$APIM_HOME user=$OS_USER role=$NODE_ROLE region=$AWS_REGION"',
            'echo "to stderr" >&2',
            'printf "no newline"',
        ]
    )
    node = CustomizedNode(tmp_path, hook=hook)
    result = node.run("customize")
    assert result.returncode == 0, result.stderr
    hooked = [line for line in node.logged() if line.startswith("post-boot hook: ")]
    assert hooked == [
        f"post-boot hook: running {HOOK_URL}",
        f"post-boot hook: home={node.home} user=wso2carbon role=node-1 region=us-east-1",
        "post-boot hook: to stderr",
        "post-boot hook: no newline",
        f"post-boot hook: {HOOK_URL} exited 0",
    ]
    assert hooked[-1] == node.logged()[-1], "after the jars"
    assert oct((tmp_path / "state" / "post-boot-hook").stat().st_mode & 0o777) == "0o700"


def test_a_failing_hook_stops_the_boot_before_api_m_starts_and_says_so(tmp_path):
    node = CustomizedNode(tmp_path, hook="#!/bin/bash\necho half done\nexit 3\n")
    leaves = "ensure_user install_product ensure_shared_folders keep_distribution_copies ensure_fstab mount_share seed_share_once "
    leaves += "bind_shared_folders install_jdbc_driver ensure_pair_secrets write_secrets_env install_keystores ensure_schema "
    leaves += "install_config bound_log_rotation write_runtime_env map_public_name start_content_sync start_agent start_service"
    stubs = "\n".join(f'{name}() {{ echo {name} >> "{tmp_path}/trace"; }}' for name in leaves.split())
    result = node.run(f"{stubs}\nboot")
    assert result.returncode != 0
    trace = (tmp_path / "trace").read_text().split()
    assert trace[-2:] == ["map_public_name", "start_content_sync"] and "start_service" not in trace
    assert "post-boot hook: half done" in node.logged()
    assert f"not starting API-M: the post-boot hook {HOOK_URL} exited 3" in node.logged()
    assert "boot failed" in result.stderr
    assert not (tmp_path / "state" / "boot-done").exists()


def test_a_hook_that_cannot_be_fetched_stops_the_boot(tmp_path):
    node = CustomizedNode(tmp_path)
    (tmp_path / "s3" / "post-boot.sh").unlink()
    result = node.run("customize")
    assert result.returncode != 0
    assert f"giving up after 2 attempts: fetch {HOOK_URL} {tmp_path}/state/post-boot-hook" in node.logged()


# How it is shipped -----------------------------------------------------------------------------------------------------
STEPS = {"customize", "run_post_boot_hook"}
GUARD = '[[ -z "${NODE_ROLE:-}" ]] || customize'


def _defined(text: str) -> set[str]:
    return set(re.findall(r"^([a-z_][a-z0-9_]*)\(\) \{", text, re.M))


@pytest.mark.parametrize("mode", tuple(boot_script.BOOT_PARTS))
def test_only_a_customized_node_gets_the_part_and_main_calls_it_only_there(mode):
    plain, customized = boot_script.boot_script_text(mode), boot_script.boot_script_text(mode, customized=True)
    assert not STEPS & _defined(plain) and STEPS <= _defined(customized)
    calls = [line.strip() for line in plain.splitlines() if "customize" in re.findall(r"[a-z_]+", line)]
    assert calls == [GUARD], "called only where node.env names a role (customize.sh's nodes)"
    order = customized.index("\ncustomize() {"), customized.index("\nboot() {")
    assert order == tuple(sorted(order)), "the part comes before main"


@pytest.mark.parametrize("mode", tuple(boot_script.BOOT_PARTS))
@pytest.mark.parametrize("text", [boot_script.boot_script_source, boot_script.boot_script_text], ids=["source", "shipped"])
def test_a_customized_nodes_boot_step_is_shellcheck_clean(text, mode, tmp_path):
    assert shutil.which("shellcheck"), "shellcheck is installed by `make install`"
    script = tmp_path / "wso2am-boot"
    script.write_text(text(mode, customized=True))
    result = subprocess.run(["shellcheck", "-S", "style", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_a_node_without_customization_gets_none_of_it():
    data = customized_data()
    settings = parse_settings(data, environ={})
    env = boot_script.render_node_env(settings, DEPLOYED, 0)
    assert not {"EXTRA_JARS", "JVM_OPTIONS", "POST_BOOT_HOOK", "NODE_ROLE"} & {line.split("=")[0] for line in env.splitlines()}
    assert not STEPS & _defined(boot_script.node_boot_script(settings))


EVERY_CUSTOMIZATION = {
    "deployment_toml": {
        "apim": {"cors": {"allow_credentials": True}, "workflow": {"enable": True, "service_url": "https://bps.example.com:9445/bpmn"}},
        "database": {"apim_db": {"pool_options": {"maxActive": 150, "maxWait": 60000}}},
        "transport": {"https": {"properties": {"maxThreads": 400}}},
    },
    "extra_jars": [
        {"url": "s3://acme-artifacts/jars/acme-extension-1.4.2.jar", "sha256": hashlib.sha256(b"extension").hexdigest()},
        {"url": "s3://acme-artifacts/jars/ojdbc11-23.4.0.jar"},
    ],
    "jvm_options": ["-Dfile.encoding=UTF-8", "-XX:+UseG1GC"],
    "post_boot_hook": "s3://acme-artifacts/hooks/post-boot.sh",
}


def _largest_pair_node() -> Settings:
    """The largest pair node's settings: local restored, with rsync (node 2 is rsync's larger), every customization;
    without the secure vault, whose part is measured with it."""
    data = restored_local_dict("rsync")
    data.pop("secure_vault", None)
    data["customization"] = EVERY_CUSTOMIZATION
    return parse_settings(data, environ={})


@pytest.mark.parametrize("node", ["pair", "gateway-4.3", "gateway-4.7"])
def test_every_customization_still_fits_ec2s_16_kb(node):
    """EC2 takes 16 KB of user data; the stack gzips it (Terraform's base64gzip, Go's default level 6)."""
    if node == "pair":
        user_data = boot_script.render_user_data(_largest_pair_node(), 1, DEPLOYED)
    else:
        data = customized_data(**EVERY_CUSTOMIZATION)
        if node == "gateway-4.7":
            data["apim"] |= {"version": "4.7.0", "archive_url": "s3://a/wso2am-4.7.0.zip", "jdk": 21}
            data["gateway_scale_out"]["archive_url"] = "s3://a/wso2am-universal-gw-4.7.0.zip"
        settings = parse_settings(data, environ={})
        user_data = render_gateway_user_data(settings, DEPLOYED)
        assert "customize() {" in gateway_boot_script(settings)
    size = len(gzip.compress(user_data.encode(), compresslevel=6))
    print(f"{node}: {size} bytes gzipped with every customization")
    assert size < EC2_USER_DATA_LIMIT, f"{size} bytes gzipped"
