"""The files of the device the agent audits, broken every way we know: certificates and keys,
the Greengrass configuration's shapes (the real nucleus-integ and nucleus-lite samples among
them), deployed recipes and IoT policy files. Each case names the result it must produce
(check id, status, ``details.reason``) and every report keeps the invariants: no internal
error, a remediation on every non-OK result, every payload publishable."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent.greengrass.recipes import legacy_recipe_file_name, recipe_file_name
from agent.report import Status
from tests.conftest import REPO, SHARED_FIXTURES
from tests.hostile import inputs
from tests.hostile.conftest import Device, assert_invariants, cycle, find
from tests.peers.silent import closed_port  # noqa: F401  (fixture)

CERT, KEY, ROOT_CA = "thingCert.crt", "privKey.key", "rootCA.pem"
# Found by the pem fuzz target: a certificate whose key algorithm OID no library knows.
UNKNOWN_KEY_ALGORITHM = REPO / "tests/fuzz/corpus/pem/regression-unknown-key-algorithm.pem"
EFFECTIVE = SHARED_FIXTURES / "effective-config"


@dataclass(frozen=True)
class Expect:
    """A result the case must produce."""

    check_id: str
    status: Status
    reason: str | None = None
    target_suffix: str | None = None
    fragment: str | None = None
    """A piece of the message (case-insensitive)."""


Breaker = Callable[[Device, Path], dict[str, Any] | None]
"""Breaks the device (``work`` is a scratch directory); returns an agent config, if any."""


@dataclass(frozen=True)
class DeviceCase:
    """One broken device and the verdicts it must get."""

    name: str
    areas: tuple[str, ...]
    breaks: Breaker
    expect: tuple[Expect, ...]
    env: dict[str, str] = field(default_factory=dict)


# --- certificates and keys -----------------------------------------------------------------------


def replace_file(name: str, content: Callable[[Device], bytes]) -> Breaker:
    """Overwrite one identity file of the root."""

    def breaks(dev: Device, work: Path) -> None:
        (dev.root / name).write_bytes(content(dev))

    return breaks


def special_file(name: str, build: Callable[[Path], Path]) -> Breaker:
    """Replace one identity file by a special file."""

    def breaks(dev: Device, work: Path) -> None:
        (dev.root / name).unlink()
        build(dev.root / name)

    return breaks


def cert_pem(dev: Device) -> bytes:
    return dev.device.pem()


def key_pem(dev: Device) -> bytes:
    return dev.device.key_pem()


def readable(target: str, reason: str, fragment: str | None = None) -> Expect:
    return Expect("certificate.readable", Status.CRITICAL, reason, f"/{target}", fragment)


def _der_cert(dev: Device) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding

    return dev.device.cert.public_bytes(Encoding.DER)


def _nul_in_path(dev: Device, work: Path) -> None:
    dev.set_system(certificateFilePath=str(dev.root / "thing\x00Cert.crt"))


def _symlink_maze(dev: Device, work: Path) -> dict[str, Any]:
    store = work / "store"
    (store / "sub").mkdir(parents=True)
    (store / "good.pem").write_bytes(dev.device.pem())
    inputs.symlink(store / "loop", ".")
    inputs.symlink(store / "sub" / "up", "../..")
    inputs.symlink(store / "self", "self")
    return {"certificates": {"extraPaths": [str(store)]}}


def _extra(build: Callable[[Path], Path]) -> Breaker:
    def breaks(dev: Device, work: Path) -> dict[str, Any]:
        return {"certificates": {"extraPaths": [str(build(work / "client.pem"))]}}

    return breaks


CERTIFICATE_CASES = [
    DeviceCase(
        "truncated_pem",
        ("certificate",),
        replace_file(CERT, lambda d: inputs.truncated(cert_pem(d))),
        (readable(CERT, "bad_pem"),),
    ),
    DeviceCase(
        "pem_with_garbage_base64",
        ("certificate",),
        replace_file(CERT, lambda d: inputs.garbage_base64_pem()),
        (readable(CERT, "bad_pem"),),
    ),
    DeviceCase(
        "der_instead_of_pem",
        ("certificate",),
        replace_file(CERT, _der_cert),
        (readable(CERT, "bad_pem", "looks like DER"),),
    ),
    DeviceCase(
        "key_where_the_certificate_belongs",
        ("certificate",),
        replace_file(CERT, key_pem),
        (readable(CERT, "no_certificate_found"),),
    ),
    DeviceCase(
        "certificate_where_the_key_belongs",
        ("certificate",),
        replace_file(KEY, cert_pem),
        (readable(KEY, "bad_pem"),),
    ),
    DeviceCase(
        "certificate_with_an_unknown_key_algorithm",
        ("certificate",),
        replace_file(CERT, lambda d: UNKNOWN_KEY_ALGORITHM.read_bytes()),
        (readable(CERT, "unsupported_key_type", "unsupported key"),),
    ),
    DeviceCase(
        "empty_certificate",
        ("certificate",),
        replace_file(CERT, lambda d: b""),
        (readable(CERT, "bad_pem", "empty"),),
    ),
    DeviceCase(
        "nul_bytes_in_the_certificate",
        ("certificate",),
        replace_file(CERT, lambda d: cert_pem(d).replace(b"\n", b"\x00\n", 3)),
        (readable(CERT, "bad_pem"),),
    ),
    DeviceCase(
        "non_utf8_root_ca",
        ("certificate",),
        replace_file(ROOT_CA, lambda d: b"\xff\xfe\x00-\x00-\x00B\x00E\x00G\x00I\x00N" * 100),
        (readable(ROOT_CA, "bad_pem"),),
    ),
    DeviceCase(
        "a_million_begin_lines",
        ("certificate",),
        replace_file(ROOT_CA, lambda d: b"-----BEGIN CERTIFICATE-----\n" * 37_000),
        (readable(ROOT_CA, "bad_pem"),),
    ),
    DeviceCase(
        "sparse_2_gib_certificate",
        ("certificate",),
        special_file(CERT, inputs.sparse_file),
        (readable(CERT, "too_large"),),
    ),
    DeviceCase(
        "fifo_as_certificate",
        ("certificate",),
        special_file(CERT, inputs.fifo),
        (readable(CERT, "not_a_file", "FIFO"),),
    ),
    DeviceCase(
        "dev_zero_symlink_as_root_ca",
        ("certificate",),
        special_file(ROOT_CA, lambda p: inputs.symlink(p, "/dev/zero")),
        (readable(ROOT_CA, "not_a_file", "device"),),
    ),
    DeviceCase(
        "symlink_loop_as_key",
        ("certificate",),
        special_file(KEY, lambda p: inputs.symlink(p, p.name)),
        (readable(KEY, "broken_symlink", "loop"),),
    ),
    DeviceCase(
        "nul_byte_in_the_configured_path",
        ("certificate",),
        _nul_in_path,
        (Expect("certificate.readable", Status.CRITICAL, "not_found", fragment="NUL byte"),),
    ),
    DeviceCase(
        "directory_loop_under_extra_paths",
        ("certificate",),
        _symlink_maze,
        (
            Expect("certificate.validity", Status.OK, target_suffix="/store/good.pem"),
            Expect("certificate.readable", Status.CRITICAL, "broken_symlink", "/store/self"),
        ),
    ),
    DeviceCase(
        "fifo_named_in_extra_paths",
        ("certificate",),
        _extra(inputs.fifo),
        (readable("client.pem", "not_a_file"),),
    ),
    DeviceCase(
        "sparse_file_named_in_extra_paths",
        ("certificate",),
        _extra(inputs.sparse_file),
        (readable("client.pem", "too_large"),),
    ),
]


# --- shapes of the Greengrass configuration ------------------------------------------------------


def edit(change: Callable[[dict[str, Any]], None]) -> Breaker:
    def breaks(dev: Device, work: Path) -> None:
        dev.edit(change)

    return breaks


def fixture_config(name: str) -> Breaker:
    """Replace effectiveConfig.yaml by a real-world sample from shared/fixtures."""

    def breaks(dev: Device, work: Path) -> None:
        shutil.copy(EFFECTIVE / name, dev.config_path)

    return breaks


def _lite_sample(dev: Device, work: Path) -> dict[str, Any]:
    dev.config_path.unlink()
    shutil.copy(EFFECTIVE / "greengrass-lite-sample-nucleus-config.yaml", dev.root / "config.yaml")
    return {"s3": {"credentials": {"source": "x509"}}}


def _access_control(value: Any) -> Breaker:
    def change(doc: dict[str, Any]) -> None:
        doc["services"]["com.example.Hostile"] = {
            "version": "1.0.0",
            "configuration": {"accessControl": value},
        }

    return edit(change)


def _deep_access_control(dev: Device, work: Path) -> None:
    text = dev.config_path.read_text()
    nested = inputs.nested_mapping_text(900)
    dev.config_path.write_text(
        text + f"  com.example.Deep:\n    configuration:\n      accessControl: {nested}\n"
    )


def _thing(name: str) -> Breaker:
    return edit(lambda d: d["system"].update(thingName=name))


SHAPE_CASES = [
    DeviceCase(
        "nucleus_integ_ipc_with_nulls",
        ("certificate", "subscription"),
        fixture_config("nucleus-integ-ipc.yaml"),
        (
            Expect(
                "certificate.readable",
                Status.CRITICAL,
                "not_found",
                "/greengrass/v2/device.pem.crt",
            ),
            Expect("certificate.readable", Status.UNKNOWN, "not_configured"),
        ),
    ),
    DeviceCase(
        "nucleus_integ_pubsub_access_control",
        ("subscription",),
        fixture_config("nucleus-integ-pubsub-accesscontrol.yaml"),
        (Expect("subscription.policy_lint", Status.WARNING, "catch_all_resource"),),
    ),
    DeviceCase(
        "nucleus_integ_mqttproxy_access_control",
        ("subscription",),
        fixture_config("nucleus-integ-mqttproxy-accesscontrol.yaml"),
        (Expect("subscription.publish_authorized", Status.CRITICAL, "not_granted"),),
    ),
    DeviceCase(
        "lite_sample_with_configure_this_placeholders",
        ("certificate", "s3"),
        _lite_sample,
        (
            Expect(
                "certificate.readable",
                Status.CRITICAL,
                "not_found",
                "/var/lib/greengrass/device.pem",
            ),
            Expect("s3.credentials", Status.UNKNOWN, "not_configured", fragment="iotCredEndpoint"),
        ),
    ),
    DeviceCase(
        "system_is_null",
        ("certificate",),
        edit(lambda d: d.update(system=None)),
        (Expect("certificate.readable", Status.UNKNOWN, "not_configured"),),
    ),
    DeviceCase(
        "services_is_a_list",
        ("certificate", "subscription"),
        edit(lambda d: d.update(services=["aws.greengrass.Nucleus", 7, None])),
        (Expect("certificate.readable", Status.OK),),
    ),
    DeviceCase(
        "paths_are_lists",
        ("certificate",),
        edit(lambda d: d["system"].update(certificateFilePath=[CERT], rootCaPath={"a": 1})),
        (Expect("certificate.readable", Status.UNKNOWN, "not_configured"),),
    ),
    DeviceCase(
        "thing_name_with_wildcards",
        ("subscription",),
        _thing("pi/+/#"),
        (Expect("subscription.publish_authorized", Status.CRITICAL, "invalid_topic"),),
    ),
    DeviceCase(
        "thing_name_with_nul",
        ("subscription",),
        _thing("pi\x0042"),
        (
            Expect(
                "subscription.publish_authorized", Status.CRITICAL, "invalid_topic", fragment="NUL"
            ),
        ),
    ),
    DeviceCase(
        "access_control_json_100k_deep",
        ("subscription",),
        _access_control(inputs.deep_json()),
        (
            Expect(
                "subscription.policy_lint",
                Status.CRITICAL,
                "rejected_by_nucleus",
                "com.example.Hostile",
                "nested too deeply",
            ),
        ),
    ),
    DeviceCase(
        "access_control_900_levels_deep",
        ("subscription",),
        _deep_access_control,
        (
            Expect(
                "subscription.policy_lint",
                Status.CRITICAL,
                "rejected_by_nucleus",
                "com.example.Deep/a",
            ),
        ),
    ),
    DeviceCase(
        "access_control_a_list",
        ("subscription",),
        _access_control(["aws.greengrass.ipc.mqttproxy"]),
        (Expect("subscription.policy_lint", Status.CRITICAL, "rejected_by_nucleus"),),
    ),
    DeviceCase(
        "bridge_mapping_of_junk",
        ("subscription",),
        edit(
            lambda d: d["services"].update(
                {
                    "aws.greengrass.clientdevices.mqtt.Bridge": {
                        "version": "2.3.0",
                        "configuration": {"mqttTopicMapping": {"a": None, "b": 7, "c": ["x"]}},
                    }
                }
            )
        ),
        (Expect("subscription.bridge", Status.CRITICAL, target_suffix="a"),),
    ),
]


# --- deployed recipes ----------------------------------------------------------------------------


def deploy(
    content: str | bytes | Callable[[Path], None],
    *,
    name: str = "com.example.Hostile",
    version: str = "1.0.0",
    legacy: bool = False,
) -> Breaker:
    """Deploy ``name@version`` whose stored recipe is ``content`` (or built by it)."""

    def breaks(dev: Device, work: Path) -> None:
        recipes = dev.root / "packages" / "recipes"
        recipes.mkdir(parents=True, exist_ok=True)
        file_name = (
            legacy_recipe_file_name(name, version) if legacy else recipe_file_name(name, version)
        )
        path = recipes / file_name
        if callable(content):
            content(path)
        else:
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        dev.edit(
            lambda d: d["services"].update(
                {name: {"componentType": "GENERIC", "version": version, "configuration": {}}}
            )
        )

    return breaks


def recipe(manifests: str) -> str:
    return (
        "RecipeFormatVersion: '2020-01-25'\nComponentName: com.example.Hostile\n"
        f"ComponentVersion: '1.0.0'\n{manifests}"
    )


def _ten_thousand_manifests() -> str:
    other = "  - Platform: {os: windows}\n    Artifacts: [{URI: 's3://b/w.zip'}]\n"
    return recipe("Manifests:\n" + other * 10_000)


def artifact(reason: str, fragment: str | None = None) -> Expect:
    return Expect(
        "s3.artifact", Status.UNKNOWN, reason, "com.example.Hostile@1.0.0", fragment=fragment
    )


RECIPE_CASES = [
    DeviceCase(
        "recipe_with_10000_manifests_none_for_this_device",
        ("s3",),
        deploy(_ten_thousand_manifests()),
        (artifact("bad_artifacts", "no manifest applies"),),
    ),
    DeviceCase(
        "recipe_billion_laughs",
        ("s3",),
        deploy(recipe("") + inputs.billion_laughs(key="x")),
        (artifact("recipe_unreadable", "aliases"),),
    ),
    DeviceCase(
        "recipe_over_1_mib",
        ("s3",),
        deploy(recipe("Manifests: []\n") + "# padding\n" * 120_000),
        (artifact("recipe_unreadable", "larger than"),),
    ),
    DeviceCase(
        "recipe_non_utf8",
        ("s3",),
        deploy(recipe("Manifests: []\n").encode() + b"Description: \xff\xfe\n"),
        (artifact("recipe_unreadable", "UTF-8"),),
    ),
    DeviceCase(
        "recipe_json_100k_deep",
        ("s3",),
        deploy(inputs.deep_json_object(), legacy=True),
        (artifact("recipe_unreadable", "nesting depth"),),
    ),
    DeviceCase(
        "recipe_a_list",
        ("s3",),
        deploy("- ComponentName: com.example.Hostile\n"),
        (artifact("recipe_unreadable", "mapping"),),
    ),
    DeviceCase(
        "recipe_manifests_a_string",
        ("s3",),
        deploy(recipe("Manifests: everything\n")),
        (artifact("bad_artifacts", "not a list"),),
    ),
    DeviceCase(
        "recipe_artifact_without_uri",
        ("s3",),
        deploy(recipe("Manifests:\n  - Artifacts: [{Unarchive: ZIP}]\n")),
        (artifact("bad_artifacts", "has no URI"),),
    ),
    DeviceCase(
        "recipe_of_another_component",
        ("s3",),
        deploy(recipe("Manifests: []\n").replace("com.example.Hostile", "com.example.Other")),
        (artifact("recipe_mismatch"),),
    ),
    DeviceCase(
        "recipe_is_a_fifo",
        ("s3",),
        deploy(inputs.fifo),
        (artifact("recipe_missing"),),
    ),
]


# --- IoT policy files ----------------------------------------------------------------------------


def policy_file(content: str | bytes | Callable[[Path], Path]) -> Breaker:
    def breaks(dev: Device, work: Path) -> dict[str, Any]:
        path = work / "policy.json"
        if callable(content):
            content(path)
        else:
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        return {"subscriptions": {"iotPolicyFile": str(path)}}

    return breaks


def policy(status: Status, reason: str, fragment: str | None = None) -> Expect:
    return Expect("subscription.iot_policy", status, reason, fragment=fragment)


POLICY_CASES = [
    DeviceCase(
        "policy_with_a_million_statements",
        ("subscription",),
        policy_file(inputs.iot_policy_statements(1_000_000)),
        (policy(Status.UNKNOWN, "unreadable_policy", "larger than"),),
    ),
    DeviceCase(
        "policy_aliased_to_a_million_statements",
        ("subscription",),
        policy_file(inputs.aliased_iot_policy()),
        (policy(Status.UNKNOWN, "unreadable_policy", "aliases"),),
    ),
    DeviceCase(
        "policy_json_100k_deep",
        ("subscription",),
        policy_file(inputs.deep_json()),
        (policy(Status.UNKNOWN, "unreadable_policy", "nesting depth"),),
    ),
    DeviceCase(
        "get_policy_response_with_a_100k_deep_document",
        ("subscription",),
        policy_file(json.dumps({"policyName": "deep", "policyDocument": inputs.deep_json()})),
        (policy(Status.UNKNOWN, "unreadable_policy"),),
    ),
    DeviceCase(
        "policy_non_utf8",
        ("subscription",),
        policy_file(b'{"Statement": "\xff"}'),
        (policy(Status.UNKNOWN, "unreadable_policy", "UTF-8"),),
    ),
    DeviceCase(
        "policy_statement_a_string",
        ("subscription",),
        policy_file('{"Version": "2012-10-17", "Statement": "allow everything"}'),
        (policy(Status.UNKNOWN, "unreadable_policy"),),
    ),
    DeviceCase(
        "policy_is_a_fifo",
        ("subscription",),
        policy_file(inputs.fifo),
        (policy(Status.UNKNOWN, "unreadable_policy", "regular file"),),
    ),
    DeviceCase(
        "policy_globs_that_backtrack_exponentially",
        ("subscription",),
        policy_file(
            json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["iot:Des" + "*" * 40 + "e", "iot:" + "*C" * 30 + "*x"],
                            "Resource": "arn:aws:iot:*:*:" + "*a" * 40 + "*b",
                        }
                    ],
                }
            )
        ),
        (policy(Status.CRITICAL, "missing_permission"),),
    ),
    DeviceCase(
        "policy_with_15000_statements_within_the_cap",
        ("subscription",),
        policy_file(inputs.iot_policy_statements(15_000)),
        (Expect("subscription.iot_policy", Status.CRITICAL),),
    ),
]

ALL_CASES = CERTIFICATE_CASES + SHAPE_CASES + RECIPE_CASES + POLICY_CASES


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.name)
def test_broken_device_input_gets_its_verdict(
    case: DeviceCase,
    healthy: Device,
    tmp_path: Path,
    closed_port: int,  # noqa: F811
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    config = case.breaks(healthy, work)
    env = {
        # Credentials that go nowhere: the s3 area reports recipe problems before any call,
        # and every call is refused at once on a closed loopback port.
        "AWS_ACCESS_KEY_ID": "AKIAHOSTILE000000000",
        "AWS_SECRET_ACCESS_KEY": "hostile-secret-not-real-0000000000000000",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}",
        "AWS_REGION": "us-west-2",
        "HOME": str(tmp_path),
        **case.env,
    }
    report = cycle(healthy.root, case.areas, config=config, config_dir=work, env=env)
    assert_invariants(report)
    for want in case.expect:
        found = find(report.checks, want.check_id, target_suffix=want.target_suffix)
        matching = [
            r
            for r in found
            if r.status is want.status
            and (want.reason is None or r.details.get("reason") == want.reason)
            and (want.fragment is None or want.fragment.lower() in r.message.lower())
        ]
        assert matching, (want, [(r.target, r.status, r.details, r.message) for r in found])
