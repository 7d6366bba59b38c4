"""``agent.aws.iot.fetch_attached_policies`` against moto's IoT (real HTTP, real SigV4 headers;
moto cannot enforce IAM on IoT's REST calls, see tests/peers/moto.py), and IoT's JSON errors
against a canned peer."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from agent.aws.credentials import Credentials
from agent.aws.http import HttpClient
from agent.aws.iot import certificate_arn, certificate_id, fetch_attached_policies
from agent.aws.session import AwsSession, Budget
from agent.errors import AwsError, ErrorKind
from tests.conftest import SHARED_FIXTURES
from tests.peers.moto import ACCOUNT, MotoServer
from tests.peers.silent import Canned
from tests.peers.tls import Pair, ca, leaf

pytestmark = pytest.mark.peer

POLICIES = SHARED_FIXTURES / "iot-policies"


def session_for(moto: MotoServer, creds: dict[str, str]) -> AwsSession:
    return AwsSession(
        http=HttpClient(),
        credentials=Credentials(
            creds["key_id"], creds["secret"], creds.get("token"), source="test"
        ),
        region="us-east-1",
        env={"AWS_ENDPOINT_URL": moto.url},
        budget=Budget(10, 5),
    )


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    directory = tmp_path_factory.mktemp("iot-device")
    return leaf(directory, ca(directory, "Device Issuer"), "pi-42", server=False)


@pytest.fixture(scope="module")
def registered(moto_server_open: MotoServer, device: Pair) -> list[tuple[str, str]]:
    """The device certificate registered in moto with two real-world policies attached."""
    iot = moto_server_open.client("iot")
    cert = iot.register_certificate_without_ca(
        certificatePem=device.cert_pem.decode(), status="ACTIVE"
    )
    attached = []
    suffix = uuid.uuid4().hex[:6]
    for fixture in (
        "greengrass-v2-core-device-minimal-iot-policy.json",
        "GreengrassCoreTokenExchangeRoleAliasPolicy.json",
    ):
        name = f"{fixture.split('.')[0]}-{suffix}"
        document = (POLICIES / fixture).read_text()
        iot.create_policy(policyName=name, policyDocument=document)
        iot.attach_policy(policyName=name, target=cert["certificateArn"])
        attached.append((name, document))
    return attached


def test_certificate_id_is_the_sha256_of_the_der_encoding(device: Pair) -> None:
    der = device.cert.public_bytes(Encoding.DER)
    assert certificate_id(device.cert_pem) == hashlib.sha256(der).hexdigest()
    assert certificate_id(der) == certificate_id(device.cert_pem)
    arn = certificate_arn(device.cert_pem, region="cn-north-1", account="123")
    assert arn.startswith("arn:aws-cn:iot:cn-north-1:123:cert/")


def test_fetches_every_attached_policy_with_its_document(
    moto_server_open: MotoServer,
    device: Pair,
    registered: list[tuple[str, str]],
) -> None:
    creds = {"key_id": "AKIAIOSFODNN7EXAMPLE", "secret": "s" * 40}
    found = fetch_attached_policies(session_for(moto_server_open, creds), device.cert_pem)
    assert sorted((p.name, json.loads(p.document)) for p in found) == sorted(
        (name, json.loads(doc)) for name, doc in registered
    )
    # The ARN was computed, not looked up: moto registered the cert under the same id.
    listed = moto_server_open.client("iot").list_certificates()["certificates"]
    ours = [c for c in listed if c["certificateId"] == certificate_id(device.cert_pem)]
    assert ours and ours[0]["certificateArn"].endswith(
        f":{ACCOUNT}:cert/{certificate_id(device.cert_pem)}"
    )


def test_a_certificate_without_policies_gives_an_empty_list(
    moto_server_open: MotoServer,
    tmp_path: Path,
) -> None:
    other = leaf(tmp_path, ca(tmp_path, "Other Issuer"), "lonely", server=False)
    creds = {"key_id": "AKIAIOSFODNN7EXAMPLE", "secret": "s" * 40}
    found = fetch_attached_policies(
        session_for(moto_server_open, creds), other.cert_pem, account=ACCOUNT
    )
    assert found == []


def test_a_role_that_may_not_read_policies_is_access_denied(canned: Canned, device: Pair) -> None:
    # What AWS IoT answers when the role lacks iot:ListAttachedPolicies (REST-JSON error).
    canned.answer(
        403,
        b'{"message":"User: arn:aws:sts::123456789012:assumed-role/R/pi-42 is not authorized '
        b'to perform: iot:ListAttachedPolicies"}',
        x_amzn_ErrorType="AccessDeniedException:",
        Content_Type="application/json",
    )
    session = AwsSession(
        http=HttpClient(),
        credentials=Credentials("AKIAIOSFODNN7EXAMPLE", "s" * 40, source="test"),
        region="us-east-1",
        env={"AWS_ENDPOINT_URL_IOT": canned.url},
        budget=Budget(10, 5),
    )
    with pytest.raises(AwsError) as caught:
        fetch_attached_policies(session, device.cert_pem, account=ACCOUNT)
    assert caught.value.kind is ErrorKind.ACCESS_DENIED
    assert caught.value.code == "AccessDeniedException"
    assert "iot:ListAttachedPolicies" in caught.value.message
    path = canned.requests[0]["path"]
    assert path.startswith(
        "/attached-policies/arn%3Aaws%3Aiot%3Aus-east-1%3A123456789012%3Acert%2F"
    )
    assert canned.requests[0]["method"] == "POST"


def test_not_a_certificate_is_a_clear_error() -> None:
    with pytest.raises(AwsError) as caught:
        certificate_id(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    assert caught.value.kind is ErrorKind.NOT_CONFIGURED


def test_moto_certificate_is_parsed_by_cryptography(device: Pair) -> None:
    # Guard for the test itself: the PEM handed to moto is a real certificate.
    assert x509.load_pem_x509_certificate(device.cert_pem).subject
    assert datetime.now(timezone.utc) < device.cert.not_valid_after_utc
