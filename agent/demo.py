"""``gg-health-agent demo``: build a realistic throwaway Greengrass root and check it.

The root is laid out as the Java nucleus lays out ``/greengrass/v2``: ``config/`` (mode 700) with
``effectiveConfig.yaml``, the device identity beside it, deployed recipes in ``packages/recipes/``,
plus a folder of client-device certificates. A few findings are planted on purpose so a newcomer
sees every kind of verdict without an AWS account; nothing leaves the machine.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

import yaml

THING = "demo-pi-42"
AGENT = "gghealth.HealthAgent"
DEMO_AREAS = ("certificate", "subscription", "system")  # s3 and agent would need AWS itself
"""``system`` runs offline: the kernel's clock state is real, the skew and the endpoints are a
clear UNKNOWN ("the demo does not use the network"), not a failure."""


def _key(bits: int = 2048) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    return (
        ec.generate_private_key(ec.SECP256R1())
        if bits == 0
        else rsa.generate_private_key(public_exponent=65537, key_size=bits)
    )


def _cert(
    subject_cn: str,
    key: Any,
    issuer: tuple[str, Any] | None,
    *,
    days: int,
    ca: bool = False,
    now: datetime,
) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    issuer_cn, issuer_key = issuer or (subject_cn, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(obj: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    if hasattr(obj, "public_bytes"):
        return obj.public_bytes(serialization.Encoding.PEM)  # type: ignore[no-any-return]
    return obj.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    path.chmod(mode)


def recipe_file_name(name: str, version: str) -> str:
    """How nucleus 2.x names a stored recipe: base64url(sha256(name)) without padding."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(name.encode()).digest()).rstrip(b"=")
    return f"{digest.decode()}@{version}.recipe.yaml"


def _recipe(name: str, version: str, bucket: str) -> dict[str, Any]:
    return {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": name,
        "ComponentVersion": version,
        "ComponentPublisher": "Demo Corp",
        "Manifests": [
            {
                "Platform": {"os": "linux"},
                "Lifecycle": {"Run": "python3 -u {artifacts:path}/main.py"},
                "Artifacts": [{"URI": f"s3://{bucket}/{name}/{version}/main.py"}],
            }
        ],
    }


def _access(policy_id: str, service: str, operations: list[str], resources_: list[str]) -> Any:
    return {
        service: {
            policy_id: {
                "policyDescription": f"{policy_id} (demo)",
                "operations": operations,
                "resources": resources_,
            }
        }
    }


def build_demo_root(root: Path, now: datetime | None = None) -> Path:
    """Write the demo Greengrass root under ``root`` and return it."""
    now = now or datetime.now(timezone.utc)
    ca_key = _key()
    ca = _cert("Demo Fleet Device CA", ca_key, None, days=3650, ca=True, now=now)
    device_key = _key()
    device = _cert(THING, device_key, ("Demo Fleet Device CA", ca_key), days=365, now=now)
    amazon_root = resources.files("agent").joinpath("data/AmazonRootCA1.pem").read_bytes()

    _write(root / "thingCert.crt", _pem(device))
    # Finding: the key is group-readable (installed keys are 600).
    _write(root / "privKey.key", _pem(device_key), 0o640)
    _write(root / "rootCA.pem", amazon_root)
    _write(root / "certs" / "fleet-ca.pem", _pem(ca))

    clients = root / "clientdevices"
    for name, days, bits in [
        ("sensor-01", 400, 2048),
        ("sensor-02", 300, 0),
        ("camera-07", 12, 2048),  # finding: expires soon
        ("legacy-plc", 200, 1024),
    ]:  # finding: RSA-1024 key
        _write(
            clients / f"{name}.pem.crt",
            _pem(_cert(name, _key(bits), ("Demo Fleet Device CA", ca_key), days=days, now=now)),
        )

    deployed = {
        "com.example.Telemetry": (
            "1.4.0",
            _access(
                "com.example.Telemetry:mqttproxy:1",
                "aws.greengrass.ipc.mqttproxy",
                ["aws.greengrass#PublishToIoTCore"],
                ["dt/telemetry/{iot:thingName}/+"],
            ),
        ),
        # Finding: every operation on every local topic.
        "com.example.Debugger": (
            "0.9.1",
            _access("com.example.Debugger:pubsub:1", "aws.greengrass.ipc.pubsub", ["*"], ["*"]),
        ),
    }
    services: dict[str, Any] = {
        "aws.greengrass.Nucleus": {
            "componentType": "NUCLEUS",
            "version": "2.14.3",
            "configuration": {
                "awsRegion": "eu-west-1",
                "iotDataEndpoint": "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com",
                "iotCredEndpoint": "c1d2e3f4g5h6i7.credentials.iot.eu-west-1.amazonaws.com",
                "iotRoleAlias": "GreengrassV2TokenExchangeRoleAlias",
                "mqtt": {"spooler": {"maxSizeInBytes": 2621440}},
                "runWithDefault": {"posixUser": "ggc_user:ggc_group"},
            },
        },
        AGENT: {
            "componentType": "GENERIC",
            "version": "0.1.0",
            "configuration": {
                "intervalSeconds": 300,
                "certificates": {
                    "warnDays": 30,
                    "criticalDays": 7,
                    "extraPaths": [str(clients)],
                    "caBundle": str(root / "certs/fleet-ca.pem"),
                },
                "accessControl": _access(
                    f"{AGENT}:mqttproxy:1",
                    "aws.greengrass.ipc.mqttproxy",
                    ["aws.greengrass#PublishToIoTCore"],
                    ["dt/gghealth/+/health"],  # as recipes/recipe.yaml grants it
                ),
            },
        },
        "aws.greengrass.clientdevices.mqtt.Bridge": {
            "version": "2.3.2",
            "configuration": {
                "mqttTopicMapping": {
                    "SensorsToCloud": {
                        "topic": "sensors/+/telemetry",
                        "source": "LocalMqtt",
                        "target": "IotCore",
                    },
                    # Finding: everything local is bridged to the cloud.
                    "EverythingUp": {"topic": "#", "source": "LocalMqtt", "target": "IotCore"},
                }
            },
        },
    }
    for name, (version, access) in deployed.items():
        services[name] = {
            "componentType": "GENERIC",
            "version": version,
            "configuration": {"accessControl": access},
        }
        _write(
            root / "packages" / "recipes" / recipe_file_name(name, version),
            yaml.safe_dump(_recipe(name, version, "demo-artifacts-bucket"), sort_keys=False),
        )

    config = {
        "system": {
            "certificateFilePath": str(root / "thingCert.crt"),
            "privateKeyPath": str(root / "privKey.key"),
            "rootCaPath": str(root / "rootCA.pem"),
            "rootpath": str(root),
            "thingName": THING,
        },
        "services": services,
    }
    _write(root / "config" / "effectiveConfig.yaml", yaml.safe_dump(config, sort_keys=False))
    (root / "config").chmod(0o700)
    return root


def run_demo(directory: Path | None, out: TextIO | None = None) -> int:
    """Build the root, check it, print the text report (to ``out``, default stdout); 0
    whenever the demo ran."""
    from agent.render import render_text
    from agent.runner import check_once, load_settings

    keep = directory is not None
    root = directory or Path(tempfile.mkdtemp(prefix="gghealth-demo-"))
    try:
        root.mkdir(parents=True, exist_ok=True)
        build_demo_root(root)
        report = check_once(load_settings(root), DEMO_AREAS, network=False)
        out = out or sys.stdout
        out.write(f"Demo Greengrass root: {root}{'' if keep else ' (removed afterwards)'}\n")
        out.write(
            "Planted findings: a group-readable private key, a client certificate that\n"
            "expires within two weeks, an RSA-1024 client key, a catch-all IPC policy, an IPC\n"
            "policy that relies on {iot:thingName} without interpolation, and a bridge of '#'\n"
            "to AWS IoT Core. The clock and endpoint checks need the network, which the demo\n"
            "does not use: they say UNKNOWN (only the kernel's NTP state is read for real).\n\n"
        )
        out.write(render_text(report, colour=out.isatty()))
        if keep:
            out.write(f"\nRe-run: gg-health-agent check --greengrass-root {root}\n")
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0
