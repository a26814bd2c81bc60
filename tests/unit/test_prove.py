"""scripts/prove.py: the steps' order and nodes, a failure named by its step, cleanup after any failure, the bounds
each node command gets, and the REST API paths per version (WSO2's published definitions); the node program's
throttling polls and its throwaway API's visibility; the stand-in's delayed throttle decision and API visibility; the
Session Manager command's execution bound (scripts/on_node.py)."""

from __future__ import annotations

import io
import json
import shlex
import sys
import time

import botocore.session
import pytest
from botocore.stub import Stubber

from apim_active_active.versions import rest_apis
from scripts.on_node import Outcome, run_on_instance
from scripts.prove import (
    AWS_BOUNDS,
    CLEANUP,
    INVOKE,
    NODE_PROGRAM,
    PUBLISH,
    REHEARSAL_BOUNDS,
    REVOKE,
    THROTTLE,
    THROTTLE_LIMIT,
    Prover,
    node_script,
    run_name,
)
from scripts.rehearsal.standin import standin_api

RUN = "prove-20250101120000"


class ScriptedShell:
    """STAND-IN for the node shell (Session Manager or a rehearsal node host): answers each (node, step) as
    scripted, records what it was asked and with which bound."""

    def __init__(self, answers: dict[tuple[int, str], Outcome] | None = None) -> None:
        self.answers, self.calls = answers or {}, []

    def run(self, node: int, script: str, seconds: float) -> Outcome:
        words = shlex.split(script.split("\n", 1)[0].split("<<", 1)[0])
        step, params = words[2], json.loads(words[4])
        self.calls.append((node, step, seconds, params))
        default = {"ok": True, "left": []} if step == "cleanup" else {"ok": True, "detail": f"{step} ok", "made": {step: "id"}}
        return self.answers.get((node, step), Outcome("Success", 0, json.dumps(default) + "\n", ""))


def failed(saw: str) -> Outcome:
    return Outcome("Failed", 1, json.dumps({"ok": False, "saw": saw}) + "\n", "")


def prove(shell: ScriptedShell):
    return Prover(shell, rest_apis("4.3.0"), "Default", REHEARSAL_BOUNDS, RUN).prove()


def test_every_step_on_its_node_in_order_then_cleanup_on_node_2_then_node_1():
    shell = ScriptedShell()
    results = prove(shell)
    assert [(node, step) for node, step, *_ in shell.calls] == [
        (1, "publish"),
        (2, "invoke"),
        (2, "revoke"),
        (1, "exceed"),
        (2, "enforced"),
        (2, "cleanup"),
        (1, "cleanup"),
    ]
    assert [(r.check, r.status) for r in results] == [(n, "pass") for n in (PUBLISH, INVOKE, REVOKE, THROTTLE, CLEANUP)]
    assert results[3].detail == "exceed ok; enforced ok", "the throttling step is both halves"


def test_what_one_step_made_reaches_the_next_steps_by_id_only():
    shell = ScriptedShell()
    prove(shell)
    invoke_params = shell.calls[1][3]
    assert invoke_params["publish"] == "id" and invoke_params["paths"]["publisher"] == "/api/am/publisher/v4"
    assert set(invoke_params) == {"paths", "environment", "limit", "wait", "poll", "publish"}, "names and ids, never a secret"


def test_a_refused_revocation_names_its_step_and_what_was_seen_skips_the_rest_and_still_cleans_up():
    saw = "node 2's gateway refusing the token revoked at node 1 within 10s: last saw HTTP 200"
    shell = ScriptedShell({(2, "revoke"): failed(saw)})
    results = prove(shell)
    assert [(r.check, r.status) for r in results] == [(PUBLISH, "pass"), (INVOKE, "pass"), (REVOKE, "fail"), (CLEANUP, "pass")]
    assert results[2].detail == saw
    assert [(node, step) for node, step, *_ in shell.calls][-2:] == [(2, "cleanup"), (1, "cleanup")]
    assert "exceed" not in [step for _, step, *_ in shell.calls]


def test_a_node_that_does_not_answer_fails_the_step_with_the_shells_words():
    shell = ScriptedShell({(1, "publish"): Outcome("TimedOut", None, "", "no end within 60s")})
    results = prove(shell)
    assert (results[0].check, results[0].status) == (PUBLISH, "fail")
    assert results[0].detail == "TimedOut: no end within 60s"
    assert len(shell.calls) == 3, "publish, then cleanup on both nodes"


def test_cleanup_names_what_it_could_not_remove_and_fails():
    left = Outcome("Success", 0, json.dumps({"ok": True, "left": ["API prove-x: HTTP 409 the API has subscriptions"]}) + "\n", "")
    results = prove(ScriptedShell({(1, "cleanup"): left, (2, "cleanup"): failed("list applications: HTTP 500")}))
    assert results[-1].check == CLEANUP and results[-1].status == "fail"
    assert "node 2: list applications: HTTP 500" in results[-1].detail
    assert "node 1: API prove-x: HTTP 409 the API has subscriptions" in results[-1].detail


def test_every_node_command_is_bounded_and_carries_its_wait():
    shell = ScriptedShell()
    prove(shell)
    assert {seconds for _, _, seconds, _ in shell.calls} == {REHEARSAL_BOUNDS.step_seconds}
    assert all(p["wait"] == REHEARSAL_BOUNDS.wait_seconds < REHEARSAL_BOUNDS.step_seconds for *_, p in shell.calls)


def test_the_command_text_holds_the_node_program_and_no_secret():
    script = node_script("publish", RUN, {"paths": {}, "limit": 5})
    assert script.startswith(f"python3 - publish {RUN} ") and script.endswith("WSO2AM_PROVE\n")
    # The admin password is read on the node; tokens and secrets stay in its root-only folder.
    assert "ADMIN_SECRET_ARN" in script and 'curl", "-K", "-"' in script and "0o700" in script


def test_run_names_are_valid_api_contexts_and_unique_per_second():
    name = run_name()
    assert name.startswith("prove-") and name[6:].isdigit() and len(name) == 20


@pytest.mark.parametrize(
    "version, publisher, devportal, admin",
    [
        # apim.docs.wso2.com/en/4.0.0/reference/product-apis/overview/: Publisher v2, Developer Portal v2, Admin v2
        ("4.0.0", "/api/am/publisher/v2", "/api/am/devportal/v2", "/api/am/admin/v2"),
        ("4.1.0", "/api/am/publisher/v3", "/api/am/devportal/v2", "/api/am/admin/v3"),
        # apim.docs.wso2.com/en/4.3.0/reference/product-apis/overview/: Publisher v4, Developer Portal v3, Admin v4
        ("4.3.0", "/api/am/publisher/v4", "/api/am/devportal/v3", "/api/am/admin/v4"),
        ("4.6.0", "/api/am/publisher/v4", "/api/am/devportal/v3", "/api/am/admin/v4"),
    ],
)
def test_rest_api_paths_per_version(version, publisher, devportal, admin):
    apis = rest_apis(version)
    assert (apis.publisher, apis.devportal, apis.admin) == (publisher, devportal, admin)
    assert (apis.dcr, apis.token, apis.revoke) == ("/client-registration/v0.17/register", "/oauth2/token", "/oauth2/revoke")


def test_3_2_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="4.x only.*no API revisions"):
        rest_apis("3.2.0")


# The node program (NODE_PROGRAM), loaded in-process: its step functions called directly, with STAND-INs for the
# node's environment file, the clock, curl and the gateway's answers. --------------------------------------------------
class Clock:
    """STAND-IN for the node program's `time`: sleeping moves it on, nothing waits."""

    def __init__(self) -> None:
        self.now, self.slept = 0.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def node_program(monkeypatch, bounds=AWS_BOUNDS, made: dict | None = None) -> dict:
    """The node program's namespace, as on a node, without running a step."""
    params = Prover(ScriptedShell(), rest_apis("4.3.0"), "Default", bounds, RUN).params | (made or {})
    monkeypatch.setattr(sys, "argv", ["-", "exceed", RUN, json.dumps(params)])
    real_open = open

    def node_open(path, *args, **kwargs):
        if path == "/etc/wso2am/node.env":
            return io.StringIO("PUBLIC_NAME=api.example.com\nPEER_IP=10.0.2.10\nAWS_REGION=eu-west-1\n")
        return real_open(path, *args, **kwargs)

    namespace: dict = {"__name__": "prove_node_program", "open": node_open}
    exec(compile(NODE_PROGRAM, "NODE_PROGRAM", "exec"), namespace)
    namespace["time"] = Clock()
    namespace["app_token"] = lambda application, keys_file: ({}, "application-token")
    return namespace


def gateway(namespace: dict, answer) -> list[float]:
    """The gateway answering each request with answer(request number, clock's now); returns when each was sent."""
    sent: list[float] = []

    def invoke(token):
        assert len(sent) < 1000, "requests without end"
        sent.append(namespace["time"].now)
        status = answer(len(sent), namespace["time"].now)
        return status, json.dumps({"code": status, "message": f"status {status}"})

    namespace["invoke"] = invoke
    return sent


def passed(namespace: dict, step: str, capsys) -> dict:
    with pytest.raises(SystemExit) as ended:
        namespace[step]()
    assert ended.value.code == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_node_1_polls_until_the_traffic_managers_decision_arrives_seconds_after_the_limit(monkeypatch, capsys):
    node = node_program(monkeypatch, made={"throttled_app": "app-1"})
    # The subscription not yet known on node 1 (403) for 10 s; the decision reaches the gateway 50 s after the start.
    sent = gateway(node, lambda n, now: 403 if now < 10 else 200 if now < 50 else 429)
    said = passed(node, "exceed_step", capsys)
    assert said["ok"] and said["detail"].endswith("429]")
    assert sent == [5.0 * n for n in range(11)], "one request a poll (5 s), until the 429"
    assert len(sent) > THROTTLE_LIMIT + 3, "more requests than the limit and a margin, spread over time"


def test_node_1_gives_up_within_its_wait_and_count_naming_what_it_saw(monkeypatch):
    node = node_program(monkeypatch, made={"throttled_app": "app-1"})
    sent = gateway(node, lambda n, now: 200)
    with pytest.raises(node["Failed"], match=r"node 1's gateway did not throttle within 180s and 37 requests"):
        node["exceed_step"]()
    assert len(sent) == AWS_BOUNDS.wait_seconds / AWS_BOUNDS.poll_seconds + 1 and sent[-1] <= AWS_BOUNDS.wait_seconds


@pytest.mark.parametrize("status", [401, 404, 500, 0])
def test_node_1_fails_at_once_on_any_other_answer_naming_its_code(monkeypatch, status):
    node = node_program(monkeypatch, made={"throttled_app": "app-1"})
    sent = gateway(node, lambda n, now: 200 if n < 3 else status)
    with pytest.raises(node["Failed"], match=rf"node 1's gateway answered HTTP {status or 'no answer'}.*\[200, 200\]"):
        node["exceed_step"]()
    assert len(sent) == 3


def test_node_2_throttles_with_fewer_of_its_own_requests_than_the_limit(monkeypatch, capsys):
    node = node_program(monkeypatch, made={"throttled_app": "app-1"})
    sent = gateway(node, lambda n, now: 200 if n < 3 else 429)
    said = passed(node, "enforced_step", capsys)
    assert said["detail"].startswith("node 2's gateway: [200, 200, 429]")
    assert sent == [0, 60, 120], "spread over the wait, so its own requests stay under the limit"


def test_node_2_that_never_throttles_fails_after_fewer_requests_than_the_limit_within_its_wait(monkeypatch):
    node = node_program(monkeypatch, made={"throttled_app": "app-1"})
    sent = gateway(node, lambda n, now: 200)
    with pytest.raises(node["Failed"], match=r"node 2's gateway did not throttle within 180s and 4 requests"):
        node["enforced_step"]()
    assert len(sent) == THROTTLE_LIMIT - 1 and sent[-1] <= AWS_BOUNDS.wait_seconds


@pytest.mark.parametrize("step, most", [("exceed_step", 37), ("enforced_step", THROTTLE_LIMIT - 1)])
def test_the_throttling_polls_are_bounded_in_count_even_when_the_clock_does_not_move(monkeypatch, step, most):
    node = node_program(monkeypatch, made={"throttled_app": "app-1"})
    node["time"].sleep = lambda seconds: None  # a stalled clock: only the count can end the polls
    sent = gateway(node, lambda n, now: 200)
    with pytest.raises(node["Failed"], match=rf"did not throttle within 180s and {most} requests"):
        node[step]()
    assert len(sent) == most


def test_node_2_fails_naming_a_403(monkeypatch):
    node = node_program(monkeypatch, made={"throttled_app": "app-1"})
    gateway(node, lambda n, now: 403)
    with pytest.raises(node["Failed"], match=r"node 2's gateway answered HTTP 403"):
        node["enforced_step"]()


def test_the_throwaway_api_is_visible_to_the_admin_role_only(monkeypatch, capsys):
    node = node_program(monkeypatch)
    asked: list[tuple[str, str, object]] = []
    answers = {"/throttling/policies/application": {"policyId": "p"}, "/apis": {"id": "a"}, "/revisions": {"id": "r"}}

    def curl(method, url, auth=None, body=None, form=None, seconds=20):
        asked.append((method, url, body))
        path = url.split("?")[0]
        found = [answer for end, answer in answers.items() if path.endswith(end)]
        return (201 if found else 200), json.dumps(found[0] if found else {})

    node["curl"], node["admin"] = curl, lambda: "admin-token"
    said = passed(node, "publish", capsys)
    assert said["made"] == {"api": "a", "policy": "p"}
    created = [body for method, url, body in asked if method == "POST" and url.endswith("/api/am/publisher/v4/apis")]
    assert len(created) == 1 and isinstance(created[0], dict)
    assert (created[0]["visibility"], created[0]["visibleRoles"]) == ("RESTRICTED", ["admin"])


# The stand-in product (scripts/rehearsal/standin/standin_api.py) ----------------------------------------------------
class Handler:
    """STAND-IN for the stand-in server's request handler: a JSON body in, the answer recorded."""

    def __init__(self, asked: dict) -> None:
        raw = json.dumps(asked).encode()
        self.headers = {"Content-Length": str(len(raw)), "Content-Type": "application/json"}
        self.rfile, self.wfile, self.status = io.BytesIO(raw), io.BytesIO(), 0

    def send_response(self, status: int) -> None:
        self.status = status

    def send_header(self, *_) -> None:
        pass

    def end_headers(self) -> None:
        pass


@pytest.fixture
def standin(tmp_path, monkeypatch):
    monkeypatch.setattr(standin_api, "tables", {name: {} for name in standin_api.TABLES})
    monkeypatch.setattr(standin_api, "requests_seen", {})
    standin_api.configure(tmp_path, {})  # no peers: nothing sent
    yield standin_api
    standin_api.configure(standin_api.Path("."), {})


def test_the_standin_records_a_restricted_api_and_refuses_one_without_roles(standin, tmp_path):
    api = {"name": RUN, "context": "/" + RUN, "version": "1.0.0", "visibility": "RESTRICTED", "visibleRoles": ["admin"]}
    handler = Handler(api)
    standin.publisher(handler, "POST", ["apis"], {})
    assert handler.status == 201
    shown = json.loads((tmp_path / "repository" / "logs" / "standin-api.json").read_text())
    assert shown["api_visibility"] == {RUN: ["RESTRICTED", "admin"]}
    for wrong in ({**api, "visibleRoles": []}, {**api, "visibility": "SECRET"}):
        refused = Handler(wrong)
        standin.publisher(refused, "POST", ["apis"], {})
        assert refused.status == 400


def test_the_standins_throttle_decision_arrives_a_second_after_the_limit(standin):
    standin.tables["policies"]["p"] = {"policyName": RUN, "limit": {"timeUnit": "hour", "unitTime": 1, "requestCount": 5}}
    standin.tables["applications"]["app"] = {"name": RUN + "-throttled", "policy": RUN}
    now = time.time()
    standin.requests_seen["app:admin"] = [now - 0.2] * 5
    assert not standin.throttled("app"), "the limit reached, the decision not yet at the gateway"
    standin.requests_seen["app:admin"] = [now - standin.DECISION_SECONDS - 0.2] * 5
    assert standin.throttled("app")


# scripts/on_node.py ---------------------------------------------------------------------------------------------------
def test_a_session_manager_command_is_bounded_in_its_run_not_only_its_delivery():
    ssm = botocore.session.get_session().create_client(
        "ssm", region_name="eu-west-1", aws_access_key_id="stand-in", aws_secret_access_key="stand-in"
    )
    command_id = "0" * 8 + "-0000-0000-0000-" + "0" * 12
    with Stubber(ssm) as stub:
        stub.add_response(
            "send_command",
            {"Command": {"CommandId": command_id}},
            {
                "InstanceIds": ["i-0123456789abcdef0"],
                "DocumentName": "AWS-RunShellScript",
                "Parameters": {"commands": ["true"], "executionTimeout": ["600"]},
                "TimeoutSeconds": 600,
            },
        )
        stub.add_response(
            "get_command_invocation",
            {"Status": "Success", "ResponseCode": 0, "StandardOutputContent": "done", "StandardErrorContent": ""},
            {"CommandId": command_id, "InstanceId": "i-0123456789abcdef0"},
        )
        outcome = run_on_instance(ssm, "i-0123456789abcdef0", "true", 600, 0)
        stub.assert_no_pending_responses()
    assert outcome == Outcome("Success", 0, "done", "")
