"""Garbage from the network: the token exchange service, STS, S3, AWS IoT and the IoT
credentials provider answering with broken JSON or XML, nesting 100,000 levels deep, entity
bombs, megabytes, wrong shapes and bodies that trickle in. Every answer ends as a result with
its specific status and reason, on real loopback servers, within the request timeout."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent.report import Status
from tests.hostile import inputs
from tests.hostile.conftest import Device, assert_invariants, cli_env, cycle, find, run_cli
from tests.hostile.peers import TlsCanned, Trickle, tls_canned, trickle  # noqa: F401
from tests.peers.silent import Canned, canned  # noqa: F401  (fixture)

pytestmark = pytest.mark.peer

TES_PATH = "/2016-11-01/credentialprovider/"
TES_TOKEN = "hostile-tes-token-0123456789abcdef"
ACCOUNT = "123456789012"
IDENTITY = (
    "<GetCallerIdentityResponse><GetCallerIdentityResult>"
    f"<Arn>arn:aws:sts::{ACCOUNT}:assumed-role/GreengrassV2TokenExchangeRole/pi-42</Arn>"
    f"<UserId>AROAEXAMPLE:pi-42</UserId><Account>{ACCOUNT}</Account>"
    "</GetCallerIdentityResult></GetCallerIdentityResponse>"
).encode()
GOOD_CREDS = json.dumps(
    {
        "AccessKeyId": "ASIAHOSTILE000000000",
        "SecretAccessKey": "hostile-secret-0000000000000000000000000",
        "Token": "hostile-session-token",
        "Expiration": "2099-01-01T00:00:00Z",
    }
).encode()
BUCKET = "hostile-bucket"

Answer = tuple[int, dict[str, str], bytes]


def endpoint_of(request: dict[str, Any]) -> str:
    """Which AWS call a request to the canned server is (routing by method and path)."""
    method, path = request["method"], request["path"]
    if path.startswith(TES_PATH):
        return "tes"
    if method == "POST" and path == "/":
        return "sts"
    if path.startswith("/attached-policies/"):
        return "iot_list"
    if path.startswith("/policies/"):
        return "iot_get"
    return "s3"


def default_answer(kind: str) -> Answer:
    """A healthy answer of each endpoint."""
    if kind == "tes":
        return 200, {}, GOOD_CREDS
    if kind == "sts":
        return 200, {"Content-Type": "text/xml"}, IDENTITY
    if kind == "iot_list":
        return 200, {}, json.dumps({"policies": [{"policyName": "p"}]}).encode()
    if kind == "iot_get":
        doc = {"Version": "2012-10-17", "Statement": []}
        return 200, {}, json.dumps({"policyName": "p", "policyDocument": json.dumps(doc)}).encode()
    return 200, {}, b"<LocationConstraint>us-west-2</LocationConstraint>"


@dataclass(frozen=True)
class HttpCase:
    """One broken answer of one endpoint and the result it must give."""

    name: str
    endpoint: str
    answer: Answer
    check_id: str
    status: Status
    reason: str
    fragment: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    areas: tuple[str, ...] = ("s3",)


TES = {"s3": {"credentials": {"source": "tes"}}}
FETCH = {"subscriptions": {"fetchIotPolicy": True}}
READ_BUCKET = {"s3": {"buckets": [{"name": BUCKET}], "checkArtifacts": False}}


def tes(name: str, body: bytes, fragment: str | None = None, status: int = 200) -> HttpCase:
    return HttpCase(
        name, "tes", (status, {}, body), "s3.credentials", Status.UNKNOWN, "unexpected",
        fragment, TES,
    )  # fmt: skip


HTTP_CASES = [
    tes("tes_json_100k_deep", inputs.deep_json().encode(), "without a JSON credentials object"),
    tes("tes_html_instead_of_json", b"<html><body>502 Bad Gateway</body></html>"),
    tes("tes_json_array", b"[1, 2, 3]"),
    tes(
        "tes_fields_of_the_wrong_type",
        json.dumps({"AccessKeyId": 5, "SecretAccessKey": ["x"], "Token": None}).encode(),
        "without AccessKeyId",
    ),
    tes("tes_2_mib_body", b"{" + b" " * (2 * 1024 * 1024) + b"}", "larger than"),
    tes("tes_nul_bytes", b'{"AccessKeyId": "\x00\x00"}\x00\x00'),
    HttpCase(
        "sts_garbage_xml",
        "sts",
        (200, {}, b"<<<GetCallerIdentityResponse>>>&&&"),
        "s3.identity",
        Status.UNKNOWN,
        "unexpected",
        "without an Arn/Account",
    ),
    HttpCase(
        "sts_a_megabyte_of_open_tags",
        "sts",
        (200, {}, b"<Arn>" * 200_000),
        "s3.identity",
        Status.UNKNOWN,
        "unexpected",
    ),
    HttpCase(
        "sts_500_html",
        "sts",
        (500, {"Content-Type": "text/html"}, b"<html>oops</html>"),
        "s3.identity",
        Status.UNKNOWN,
        "server_error",
    ),
    HttpCase(
        "s3_error_with_an_xml_entity_bomb",
        "s3",
        (403, {"Content-Type": "application/xml"}, inputs.XML_ENTITY_BOMB),
        "s3.bucket",
        Status.CRITICAL,
        "access_denied",
        config=READ_BUCKET,
    ),
    HttpCase(
        "s3_error_json_instead_of_xml",
        "s3",
        (400, {}, inputs.deep_json(10_000).encode()),
        "s3.bucket",
        Status.UNKNOWN,
        "unexpected",
        config=READ_BUCKET,
    ),
    HttpCase(
        "iot_list_attached_policies_100k_deep",
        "iot_list",
        (200, {}, inputs.deep_json().encode()),
        "subscription.iot_policy",
        Status.UNKNOWN,
        "unexpected",
        "not JSON",
        FETCH,
        ("subscription",),
    ),
    HttpCase(
        "iot_get_policy_document_100k_deep",
        "iot_get",
        (200, {}, json.dumps({"policyName": "p", "policyDocument": inputs.deep_json()}).encode()),
        "subscription.iot_policy",
        Status.UNKNOWN,
        "bad_policy",
        config=FETCH,
        areas=("subscription",),
    ),
    HttpCase(
        "iot_get_policy_with_a_million_statements",
        "iot_get",
        (
            200,
            {},
            json.dumps(
                {"policyName": "p", "policyDocument": inputs.iot_policy_statements(1_000_000)}
            ).encode(),
        ),
        "subscription.iot_policy",
        Status.UNKNOWN,
        "unexpected",
        "larger than",
        FETCH,
        ("subscription",),
    ),
]


@pytest.mark.parametrize("case", HTTP_CASES, ids=lambda c: c.name)
def test_broken_answer_gets_its_verdict(
    case: HttpCase,
    healthy: Device,
    canned: Canned,  # noqa: F811
    tmp_path: Path,
) -> None:
    def respond(request: dict[str, Any]) -> Answer:
        kind = endpoint_of(request)
        return case.answer if kind == case.endpoint else default_answer(kind)

    canned.respond = respond
    env = {
        "AWS_ENDPOINT_URL": canned.url,
        "AWS_REGION": "us-west-2",
        "HOME": str(tmp_path),
    }
    if case.config is TES:
        env.update(
            AWS_CONTAINER_CREDENTIALS_FULL_URI=canned.url + TES_PATH,
            AWS_CONTAINER_AUTHORIZATION_TOKEN=TES_TOKEN,
        )
    else:
        env.update(
            AWS_ACCESS_KEY_ID="AKIAHOSTILE000000000",
            AWS_SECRET_ACCESS_KEY="hostile-secret-0000000000000000000000000",
        )
    config = {"s3": {"requestTimeoutSeconds": 2}} | case.config
    work = tmp_path / "work"
    work.mkdir()
    report = cycle(healthy.root, case.areas, config=config, config_dir=work, env=env)
    assert_invariants(report)
    assert any(endpoint_of(r) == case.endpoint for r in canned.requests)
    found = find(report.checks, case.check_id)
    matching = [
        r
        for r in found
        if r.status is case.status
        and r.details.get("reason") == case.reason
        and (case.fragment is None or case.fragment in r.message)
    ]
    assert matching, [(r.target, r.status, r.details, r.message[:300]) for r in found]


def test_tes_body_that_trickles_in_times_out(
    healthy: Device,
    trickle: Trickle,  # noqa: F811
    tmp_path: Path,
) -> None:
    env = {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": trickle.url + TES_PATH,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": TES_TOKEN,
        "AWS_REGION": "us-west-2",
        "HOME": str(tmp_path),
    }
    config = {"s3": {"credentials": {"source": "tes"}, "requestTimeoutSeconds": 0.5}}
    report = cycle(healthy.root, ["s3"], config=config, config_dir=tmp_path, env=env)
    assert_invariants(report)
    (creds,) = find(report.checks, "s3.credentials")
    assert creds.status is Status.UNKNOWN
    assert creds.details["reason"] == "timeout"
    assert re.search(r"no answer within 0\.[1-5]s", creds.message), creds.message
    assert trickle.requests == [f"GET {TES_PATH} HTTP/1.1"]


@pytest.mark.parametrize(
    ("status", "body", "reason", "fragment"),
    [
        pytest.param(
            200,
            inputs.deep_json().encode(),
            "unexpected",
            "credentials object",
            id="json_100k_deep",
        ),
        pytest.param(
            200,
            json.dumps({"credentials": {"accessKeyId": 1, "sessionToken": None}}).encode(),
            "unexpected",
            "incomplete",
            id="incomplete_credentials",
        ),
        pytest.param(
            500, b"<html>Internal Server Error</html>", "server_error", None, id="html_500"
        ),
    ],
)
def test_credentials_provider_garbage_over_mutual_tls(
    status: int,
    body: bytes,
    reason: str,
    fragment: str | None,
    healthy: Device,
    tls_canned: TlsCanned,  # noqa: F811
    tmp_path: Path,
) -> None:
    tls_canned.status, tls_canned.body = status, body
    healthy.set_system(
        certificateFilePath=str(tls_canned.device.cert_path),
        privateKeyPath=str(tls_canned.device.key_path),
    )
    config = {
        "s3": {
            "credentials": {
                "source": "x509",
                "endpoint": tls_canned.endpoint,
                "caPath": str(tls_canned.server_ca.cert_path),
            },
            "requestTimeoutSeconds": 5,
        }
    }
    report = cycle(
        healthy.root,
        ["s3"],
        config=config,
        config_dir=tmp_path,
        env={"HOME": str(tmp_path), "AWS_REGION": "us-west-2"},
    )
    assert_invariants(report)
    assert tls_canned.requests, "the credentials provider was never asked"
    (creds,) = find(report.checks, "s3.credentials")
    assert creds.status is Status.UNKNOWN, creds
    assert creds.details["reason"] == reason, creds
    assert fragment is None or fragment in creds.message


def test_oversized_answer_leaves_no_traceback_on_the_log_stream(
    healthy: Device,
    canned: Canned,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The body cap used to raise inside awscrt's callback, which prints the traceback on
    stderr — the agent's JSON log stream — whatever the agent does with the error."""
    canned.answer(200, b"{" + b" " * (2 * 1024 * 1024) + b"}")
    env = cli_env(
        tmp_path,
        {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": canned.url + TES_PATH,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": TES_TOKEN,
        },
    )
    proc = run_cli(
        ["--log-level", "DEBUG", "check", "--only", "s3", "--format", "json",
         "--greengrass-root", str(healthy.root)],
        env,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert all(json.loads(line) for line in proc.stderr.splitlines())  # JSON lines, nothing else
    (creds,) = [c for c in json.loads(proc.stdout)["checks"] if c["id"] == "s3.credentials"]
    assert creds["status"] == "UNKNOWN" and "larger than" in creds["message"]
