"""``gg-health-agent authorize`` as scripts use it: a subprocess on a real Greengrass root."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.subscriptions.conftest import EFFECTIVE
from tests.subscriptions.test_nucleus_matcher import ORACLE, SERVICE_OF, cases

PUBSUB = "aws.greengrass.ipc.pubsub"
SUBSCRIBE = "aws.greengrass#SubscribeToTopic"
PUBLISH = "aws.greengrass#PublishToTopic"


def authorize(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "authorize", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


def write_root(root: Path, services: dict[str, Any]) -> Path:
    (root / "config").mkdir(parents=True)
    text = yaml.safe_dump({"services": services}, allow_unicode=True, sort_keys=False)
    (root / "config" / "effectiveConfig.yaml").write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def pubsub_root(tmp_path: Path) -> Path:
    """The nucleus's own integration-test configuration of pubsub accessControl."""
    root = tmp_path / "gg"
    (root / "config").mkdir(parents=True)
    source = EFFECTIVE / "nucleus-integ-pubsub-accesscontrol.yaml"
    (root / "config" / "effectiveConfig.yaml").write_bytes(source.read_bytes())
    return root


def test_one_request_allowed_and_refused(pubsub_root: Path) -> None:
    root = str(pubsub_root)
    allowed = authorize("--greengrass-root", root, "SubscribeNotPublish", PUBSUB, SUBSCRIBE, "/a")
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.decode().startswith("ALLOWED: policy policyId3 grants")
    refused = authorize("--greengrass-root", root, "SubscribeNotPublish", PUBSUB, PUBLISH, "/a")
    assert refused.returncode == 1
    assert refused.stdout.decode().startswith("REFUSED: no accessControl policy")
    as_json = authorize(
        "--greengrass-root", root, "--format", "json", "SubscribeNotPublish", PUBSUB, PUBLISH, "/a"
    )
    assert as_json.returncode == 1
    answer = json.loads(as_json.stdout)
    assert answer["allowed"] is False and answer["policy"] is None and "/a" in answer["why"]
    assert set(answer) == {"allowed", "policy", "why"}


def test_usage_errors_and_unreadable_roots_exit_3(tmp_path: Path, pubsub_root: Path) -> None:
    two = authorize("--greengrass-root", str(pubsub_root), "a", "b")
    assert two.returncode == 3 and b"COMPONENT SERVICE OPERATION RESOURCE" in two.stderr
    missing = authorize("--greengrass-root", str(tmp_path / "none"), "a", PUBSUB, PUBLISH, "t")
    assert missing.returncode == 3 and b"no Greengrass configuration" in missing.stderr
    garbage = tmp_path / "garbage"
    (garbage / "config").mkdir(parents=True)
    (garbage / "config" / "effectiveConfig.yaml").write_bytes(b"services: [\x00\xff")
    broken = authorize("--greengrass-root", str(garbage), "a", PUBSUB, PUBLISH, "t")
    assert broken.returncode == 3 and b"Traceback" not in broken.stderr and broken.stderr
    for proc in (two, missing, broken):
        assert proc.stdout == b""


def test_json_lines_in_order_with_a_clear_answer_for_garbage(pubsub_root: Path) -> None:
    good = {"component": "SubscribeNotPublish", "service": PUBSUB, "resource": "/x"}
    lines = [
        json.dumps({**good, "operation": SUBSCRIBE}),
        "",
        "[1]",
        "not json",
        json.dumps({**good, "operation": 7}),
        "x" * (70 * 1024),
        json.dumps({**good, "operation": PUBLISH}),
    ]
    stdin = "\n".join(lines).encode() + b"\n\xff\xfe\n"
    proc = authorize("--greengrass-root", str(pubsub_root), stdin=stdin)
    answers = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [a["allowed"] for a in answers] == [True, False, False, False, False, False, False]
    whys = [a["why"] for a in answers]
    assert whys[1].startswith("line 3: a JSON list")
    assert whys[2].startswith("line 4: not JSON")
    assert whys[3].startswith("line 5: operation missing or not text")
    assert whys[4].startswith("line 6: longer than 65536 bytes")
    assert whys[5].startswith("no accessControl policy")  # the request after the long line
    assert whys[6] == "line 8: not UTF-8 text"
    assert proc.returncode == 3  # malformed requests were neither allowed nor refused


def test_json_lines_exit_0_only_when_every_request_is_allowed(pubsub_root: Path) -> None:
    request = {"component": "SubscribeNotPublish", "service": PUBSUB, "resource": "/x"}
    allowed = json.dumps({**request, "operation": SUBSCRIBE}).encode() + b"\n"
    refused = json.dumps({**request, "operation": PUBLISH}).encode() + b"\n"
    assert authorize("--greengrass-root", str(pubsub_root), stdin=allowed * 3).returncode == 0
    assert authorize("--greengrass-root", str(pubsub_root), stdin=allowed + refused).returncode == 1
    assert authorize("--greengrass-root", str(pubsub_root), stdin=b"").returncode == 0


def test_every_oracle_case_through_the_command(tmp_path: Path) -> None:
    """The 4,000 nucleus answers, each case a component of one root, asked in one batch."""
    services: dict[str, Any] = {}
    requests: list[bytes] = []
    expected: list[bool] = []
    for case_id, style, request, allowed, resources in cases(ORACLE):
        service, operation = SERVICE_OF[style]
        services[case_id] = {
            "configuration": {
                "accessControl": {
                    service: {"p": {"operations": [operation], "resources": resources}}
                }
            }
        }
        line = {"component": case_id, "service": service, "operation": operation}
        requests.append(json.dumps({**line, "resource": request}).encode())
        expected.append(allowed)
    root = write_root(tmp_path / "gg", services)
    proc = authorize("--greengrass-root", str(root), stdin=b"\n".join(requests) + b"\n")
    assert proc.stderr == b""
    answers = [json.loads(line)["allowed"] for line in proc.stdout.decode().splitlines()]
    assert len(answers) == 4000
    wrong = [i for i, (got, want) in enumerate(zip(answers, expected, strict=True)) if got != want]
    assert wrong == []
    assert proc.returncode == 1  # some are refused


def test_interpolated_thing_name_and_an_old_nucleus_caveat(tmp_path: Path) -> None:
    grant = {
        "aws.greengrass.ipc.mqttproxy": {
            "p": {
                "operations": ["aws.greengrass#PublishToIoTCore"],
                "resources": ["dt/{iot:thingName}/health"],
            }
        }
    }
    ask = ("c", "aws.greengrass.ipc.mqttproxy", "aws.greengrass#PublishToIoTCore")
    for interpolate, version, code in (("true", "2.14.0", 0), ("false", "2.7.0", 1)):
        root = tmp_path / interpolate
        nucleus = {
            "version": version,
            "configuration": {"interpolateComponentConfiguration": interpolate},
        }
        write_root(
            root,
            {"aws.greengrass.Nucleus": nucleus, "c": {"configuration": {"accessControl": grant}}},
        )
        (root / "config" / "effectiveConfig.yaml").write_text(
            (root / "config" / "effectiveConfig.yaml").read_text() + "system:\n  thingName: pi-42\n"
        )
        proc = authorize("--greengrass-root", str(root), *ask, "dt/pi-42/health")
        assert proc.returncode == code, proc.stdout
        assert (b"predates 2.8.0" in proc.stdout) is (version == "2.7.0")
        assert (b"does not interpolate" in proc.stdout) is (interpolate == "false")
