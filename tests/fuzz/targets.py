"""One fuzz target per parser: ``target(data: bytes) -> None``.

A target feeds the bytes to one parser the way the agent does and swallows only the errors that
parser documents as its verdict on bad input (InputError, ConfigError, PolicyError, AwsError,
Pkcs11Error, a ValueError where the API says so). Anything else escaping — a RecursionError, a
KeyError, a TypeError — is a crash: the fuzzer stops and saves the input. Each target also
checks the invariant its parser promises (a publishable topic, payloads within 128 KB...).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# Imported here, not where used: atheris instruments what is imported while this module loads,
# and the check registry would otherwise import the certificate area only later, uninstrumented.
import agent.checks.certificates  # noqa: F401
from agent.aws.classify import classify, xml_text
from agent.aws.container import parse_container_body
from agent.config import build_config, validate_publish_topic
from agent.config.files import MAX_YAML_NODES, InputError, load_yaml_text, loads_json
from agent.config.names import topic_problem
from agent.errors import AwsError, ConfigError
from agent.greengrass.platform import select_manifest
from agent.greengrass.recipes import artifact_uris
from agent.greengrass.root import GreengrassRoot
from agent.pkcs11 import Pkcs11Error, parse_uri
from agent.report import CheckResult, HealthReport, Status
from agent.runner import Settings, check_once
from agent.subscriptions.authorization import index_services
from agent.subscriptions.bridge import audit_bridge
from agent.subscriptions.iot_audit import DeviceFacts, audit_policies
from agent.subscriptions.iot_policy import PolicyError
from agent.subscriptions.iot_sources import policies_from_data
from agent.subscriptions.ipc_lint import lint_access_control
from agent.subscriptions.legacy_router import audit_router
from agent.subscriptions.topics import (
    aws_iot_limit_problem,
    filter_problem,
    matches,
)
from agent.transports.sizing import MAX_PAYLOAD_BYTES, payloads
from agent.x509 import disk_cache
from agent.x509.files import Problem
from agent.x509.inventory import IGNORED, FileEntry, Role
from agent.x509.parse import PemCertificates, parse_certificates, parse_private_key
from agent.x509.results import (
    key_quality_result,
    readable_result,
    validity_phase,
    validity_result,
)

Target = Callable[[bytes], None]
LINUX = {"os": "linux", "architecture": "amd64", "runtime": "aws_nucleus_classic"}
ROOT = Path("/greengrass/v2")


def _text(data: bytes) -> str | None:
    """The bytes as the agent reads a text file: UTF-8 or nothing (``read_text_bounded``)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _yaml(data: bytes) -> Any:
    text = _text(data)
    if text is None:
        raise InputError("not UTF-8")
    return load_yaml_text(text, origin="fuzz")


def yaml_document(data: bytes) -> None:
    """agent.config.files: any text parses or is an InputError (aliases, depth, syntax)."""
    try:
        value = _yaml(data)
    except InputError:
        return
    json.dumps(value, default=str)  # what was returned is a finite, acyclic tree


def yaml_repeated(data: bytes) -> None:
    """The node-bomb shape: a small fragment repeated to a megabyte, far under the size cap.
    It parses or is an InputError, and what parses holds at most MAX_YAML_NODES distinct nodes
    (the bound that keeps composing it under ~100 MB)."""
    if not data:
        return
    try:
        value = _yaml(data * (1024 * 1024 // len(data) + 1))
    except InputError:
        return
    seen: set[int] = set()
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    # Scalars equal in value may be one object; containers are never shared without an alias.
    assert len(seen) <= MAX_YAML_NODES + 1


def json_document(data: bytes) -> None:
    """agent.config.files.loads_json: any bytes are JSON or a ValueError, whatever the nesting."""
    try:
        value = loads_json(data)
    except ValueError:
        return
    json.dumps(value)


def agent_config(data: bytes) -> None:
    """The ``--config`` file: data, then the model; an accepted topic is publishable."""
    try:
        value = _yaml(data)
    except InputError:
        return
    if not isinstance(value, dict):
        return
    try:
        config = build_config(value, source="fuzz")
    except ConfigError:
        return
    validate_publish_topic(config.health_topic)
    assert config.interval_seconds >= 1


def effective_config(data: bytes) -> None:
    """``effectiveConfig.yaml``: the root's facts and the subscription analysers never crash."""
    try:
        raw = _yaml(data)
    except InputError:
        return
    if not isinstance(raw, Mapping):
        return
    root = GreengrassRoot(ROOT, ROOT / "config" / "effectiveConfig.yaml", lite=False, raw=raw)
    for key in ("certificateFilePath", "privateKeyPath", "rootCaPath"):
        root.path(key)
    _ = (root.thing_name, root.region, root.iot_data_endpoint, root.nucleus)
    index = index_services(root.services)
    lint_access_control(index, interpolates=False)
    audit_bridge(root.service_configuration("aws.greengrass.clientdevices.mqtt.Bridge"))
    audit_router(
        root.service_configuration("aws.greengrass.LegacySubscriptionRouter"),
        root.services,
        "2.1.0",
    )


def recipe(data: bytes) -> None:
    """A stored recipe: the manifest the nucleus would pick and its artifact URIs."""
    try:
        value = _yaml(data)
    except InputError:
        return
    if not isinstance(value, Mapping):
        return
    manifests = value.get("Manifests")
    if isinstance(manifests, list):
        select_manifest(manifests, LINUX)
    for device in (None, LINUX):
        try:
            for uri in artifact_uris(value, device):
                assert isinstance(uri, str) and uri
        except ValueError:
            pass


def iot_policy(data: bytes) -> None:
    """An IoT policy file: policies or a PolicyError, then a complete audit."""
    try:
        value = _yaml(data)
    except InputError:
        return
    try:
        policies = policies_from_data(value, "fuzz")
    except PolicyError:
        return
    facts = DeviceFacts(thing_name="pi-42", region="us-east-1", role_alias="alias")
    for verdict in audit_policies(policies, facts):
        result = verdict.to_result("subscription.iot_policy")
        assert result.status is Status.OK or result.remediation


def pem(data: bytes) -> None:
    """Certificate and key files: facts or a Problem with a catalogue reason."""
    for outcome in (parse_certificates(data, keep_objects=True), parse_private_key(data)):
        if isinstance(outcome, Problem):
            assert outcome.reason and outcome.message


_AREA_DIR: Path | None = None


def _certificate_root() -> Path:
    """A scratch Greengrass root whose device certificate and root CA the input replaces."""
    global _AREA_DIR
    if _AREA_DIR is None:
        import tempfile

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        _AREA_DIR = Path(tempfile.mkdtemp(prefix="gghealth-fuzz-root-"))
        key = ec.generate_private_key(ec.SECP256R1())
        (_AREA_DIR / "privKey.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (_AREA_DIR / "privKey.key").chmod(0o600)
    return _AREA_DIR


def certificate_area(data: bytes) -> None:
    """The whole certificate area (readable, validity, quality, key match, chain, permissions)
    on a device certificate and root CA bundle made of the input: verdicts, never a crash."""
    directory = _certificate_root()
    (directory / "thingCert.crt").write_bytes(data)
    (directory / "rootCA.pem").write_bytes(data)
    raw = {
        "system": {
            "certificateFilePath": str(directory / "thingCert.crt"),
            "privateKeyPath": str(directory / "privKey.key"),
            "rootCaPath": str(directory / "rootCA.pem"),
            "thingName": "pi-42",
        },
        "services": {
            "aws.greengrass.Nucleus": {
                "configuration": {"iotDataEndpoint": "a1-ats.iot.us-east-1.amazonaws.com"}
            }
        },
    }
    root = GreengrassRoot(directory, directory / "effectiveConfig.yaml", lite=False, raw=raw)
    settings = Settings(config=build_config({}), greengrass=root)
    now = datetime(2026, 11, 29, 18, 0, tzinfo=timezone.utc)
    report = check_once(settings, ["certificate"], clock=lambda: now, env={}, privileged=True)
    for result in report.checks:
        assert result.details.get("reason") != "internal_error", result.message
        assert result.status is Status.OK or result.remediation, result


def aws_answer(data: bytes) -> None:
    """AWS error answers (XML or JSON bodies): always classified, never expanded."""
    status = 400 + data[0] % 200 if data else 500
    error = classify(status, {"x-amzn-errortype": "Fuzz:"}, data, what="fuzz")
    assert isinstance(error, AwsError) and error.kind
    for tag in ("Code", "Message", "Arn", "LocationConstraint"):
        text = xml_text(data, tag)
        assert text is None or len(text) <= 2048


def credentials_answer(data: bytes) -> None:
    """The container credentials endpoint's 200 body: credentials or an AwsError."""
    try:
        creds = parse_container_body(data, "fuzz")
    except AwsError:
        return
    assert creds.access_key_id and creds.secret_access_key


def topic(data: bytes) -> None:
    """Topic names and filters: an accepted health topic obeys every limit."""
    text = data.decode("utf-8", "surrogateescape")
    try:
        validate_publish_topic(text)
    except ValueError:
        pass
    else:
        assert topic_problem(text) is None and aws_iot_limit_problem(text) is None
    if filter_problem(text) is None and topic_problem("a/b") is None:
        matches(text, "a/b")


def pkcs11_uri(data: bytes) -> None:
    """``pkcs11:`` URIs: parsed or a Pkcs11Error; the redacted form never carries the PIN."""
    text = "pkcs11:" + data.decode("utf-8", "replace")
    try:
        uri = parse_uri(text)
    except Pkcs11Error:
        return
    redacted = uri.redacted()
    again = parse_uri(redacted)  # the redacted form is a valid URI of the same object...
    assert again.pin is None  # ...that carries no PIN
    assert again.attributes.get("object") == uri.attributes.get("object")


def report_fold(data: bytes) -> None:
    """Report folding: results from the bytes; every payload fits and every finding is kept."""
    statuses = list(Status)
    results = []
    for index in range(0, len(data), 4):
        chunk = data[index : index + 4].ljust(4, b"\0")
        results.append(
            CheckResult(
                f"area.check{chunk[0] % 3}",
                statuses[chunk[1] % 4],
                "t" * (chunk[2] * 97),
                "m" * (chunk[3] * 511),
                {"reason": "r"},
                "fix",
            )
        )
    report = HealthReport.build(
        results,
        agent_version="0",
        thing_name="pi-42",
        generated_at="2026-01-01T00:00:00Z",
        sequence=1,
        duration_ms=0.0,
    )
    parts = payloads(report)
    assert all(len(p) <= MAX_PAYLOAD_BYTES for p in parts)
    kept = sum(1 for p in parts for c in json.loads(p)["checks"] if c["status"] != Status.OK.value)
    assert kept == sum(1 for r in results if r.status is not Status.OK)


_CACHE_FILE: Path | None = None


def certificate_cache(data: bytes) -> None:
    """``certificates.cacheFile``: entries or CacheUnusable; whatever loads, the checks can judge.

    A ``"F"`` fingerprint in the input stands for this agent's, which a fuzzer cannot guess.
    """
    global _CACHE_FILE
    if _CACHE_FILE is None:
        import tempfile

        _CACHE_FILE = Path(tempfile.mkdtemp(prefix="gghealth-fuzz-cache-")) / "certs.cache"
    expected = disk_cache.fingerprint()
    _CACHE_FILE.write_bytes(
        data.replace(b'"fingerprint":"F"', b'"fingerprint":"%s"' % expected.encode())
    )
    _CACHE_FILE.chmod(0o600)
    try:
        entries = disk_cache.load(_CACHE_FILE, expected)
    except disk_cache.CacheUnusable as exc:
        assert str(exc)
        return
    now = datetime(2026, 11, 29, 18, 0, tzinfo=timezone.utc).timestamp()
    for (path, _kind), (_stamp, outcome, _entry) in entries.items():
        if outcome is IGNORED:
            continue  # a directory member without certificates: never an entry of its own
        entry = FileEntry(path, Role.EXTRA, outcome)
        readable_result(entry, privileged=True)
        if isinstance(outcome, PemCertificates):
            for index, cert in enumerate(outcome.certs):
                multi = len(outcome.certs) > 1
                days, phase = validity_phase(cert, now)
                validity_result(entry, index, cert, multi, days, phase, 30, 7)
                key_quality_result(entry, index, cert, multi)


TARGETS: dict[str, Target] = {
    "yaml": yaml_document,
    "yaml_repeated": yaml_repeated,
    "json": json_document,
    "config": agent_config,
    "effective_config": effective_config,
    "recipe": recipe,
    "iot_policy": iot_policy,
    "pem": pem,
    "certificate_area": certificate_area,
    "aws_answer": aws_answer,
    "credentials_answer": credentials_answer,
    "topic": topic,
    "pkcs11_uri": pkcs11_uri,
    "fold": report_fold,
    "certificate_cache": certificate_cache,
}
"""Every target by the name ``run.py`` and the corpus directories use."""
