"""A real moto server (S3, STS, IAM, IoT over HTTP with SigV4) with IAM policies enforced.

``INITIAL_NO_AUTH_ACTION_COUNT=3`` lets exactly the first three calls through unauthenticated:
they create an ``admin`` user, give it an allow-all policy and an access key. Every later call,
set-up included, is authenticated and authorised against moto's IAM, so a role or user whose
policy does not allow an action gets a real ``AccessDenied``.

Use it from a test package's conftest::

    from tests.peers.moto import moto_server  # noqa: F401  (the fixture)

boto3 is used here, in tests only, to create users, roles, buckets and objects.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

import pytest

from tests.peers.base import free_port, unavailable, wait_for_port

ACCOUNT = "123456789012"
"""moto's default account."""
REGION = "us-east-1"
# The same entry point as .venv/bin/moto_server, with one setting: AWS IoT certificate ids as
# AWS computes them (SHA-256 of the DER certificate). moto's default hashes the PEM text (kept
# for its old tests) and the server has no switch for it, so ListAttachedPolicies on the real
# certificate ARN would never match. Run with -c from a scratch directory: a script beside
# this file would find this module when it imports "moto".
LAUNCH = (
    "import sys\n"
    "from moto.core.config import default_user_config\n"
    "default_user_config['iot']['use_valid_cert'] = True\n"
    "from moto.server import main\n"
    "main(sys.argv[1:])\n"
)
ALLOW_ALL = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


@dataclass(frozen=True)
class MotoServer:
    """A running moto server and the admin credentials for setting things up."""

    url: str
    port: int
    admin_key_id: str
    admin_secret: str

    def client(self, service: str, *, region: str = REGION, **creds: Any) -> Any:
        """A boto3 client on this server, with the admin keys unless ``creds`` are given."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=creds.get("key_id", self.admin_key_id),
            aws_secret_access_key=creds.get("secret", self.admin_secret),
            aws_session_token=creds.get("token"),
        )

    def assume_role(self, role_name: str, session: str = "gghealth") -> dict[str, Any]:
        """Temporary credentials of ``role_name`` (what the TES would hand out)."""
        sts = self.client("sts")
        creds: dict[str, Any] = sts.assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role_name}", RoleSessionName=session
        )["Credentials"]
        return creds

    def create_role(self, role_name: str, policy: dict[str, Any]) -> None:
        """An IAM role with one inline policy that the admin user may assume.

        The trust policy names the admin user: moto cannot evaluate a ``Service`` principal such
        as ``credentials.iot.amazonaws.com`` (it raises), and the admin stands in for the IoT
        credentials provider here.
        """
        iam = self.client("iam")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/admin"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(
            RoleName=role_name, PolicyName="access", PolicyDocument=json.dumps(policy)
        )

    def create_user(self, user_name: str, policy: dict[str, Any]) -> dict[str, str]:
        """An IAM user with one inline policy; its access key id and secret."""
        iam = self.client("iam")
        iam.create_user(UserName=user_name)
        iam.put_user_policy(
            UserName=user_name, PolicyName="access", PolicyDocument=json.dumps(policy)
        )
        key = iam.create_access_key(UserName=user_name)["AccessKey"]
        return {"key_id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def _bootstrap_admin(url: str) -> tuple[str, str]:
    import boto3

    iam = boto3.client(
        "iam",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    iam.create_user(UserName="admin")  # unauthenticated call 1 of 3
    iam.put_user_policy(
        UserName="admin", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL)
    )  # 2
    key = iam.create_access_key(UserName="admin")["AccessKey"]  # 3: from here on IAM is enforced
    return key["AccessKeyId"], key["SecretAccessKey"]


@contextmanager
def running_moto(
    tmp_path_factory: pytest.TempPathFactory, *, enforce_iam: bool
) -> Iterator[MotoServer]:
    if find_spec("moto.server") is None or find_spec("flask") is None or find_spec("boto3") is None:
        unavailable("moto[server] and boto3 are not installed in this environment")
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {
        "PATH": "/usr/bin:/bin",
        "MOTO_PORT": str(port),
        # moto signs nothing itself; dummy keys keep botocore inside moto from looking further.
        "AWS_ACCESS_KEY_ID": "moto",
        "AWS_SECRET_ACCESS_KEY": "moto",
    }
    if enforce_iam:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, "-H", "127.0.0.1", "-p", str(port)],
            cwd=log_path.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        if not wait_for_port(port) or not _answers(url):
            proc.kill()
            proc.wait(5)
            unavailable(f"moto_server did not start: {log_path.read_text()[-2000:]}")
        key_id, secret = _bootstrap_admin(url) if enforce_iam else ("AKIAOPENMOTO00000000", "open")
        yield MotoServer(url=url, port=port, admin_key_id=key_id, admin_secret=secret)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto on a free loopback port with IAM enforcement (S3, STS, IAM); yields a MotoServer."""
    with running_moto(tmp_path_factory, enforce_iam=True) as server:
        yield server


@pytest.fixture(scope="session")
def moto_server_open(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto without IAM enforcement, for the REST-JSON services (IoT control plane).

    moto 5 cannot verify SigV4 on REST-JSON calls with path parameters: it re-signs the request
    with the path parameters as a form body, so even boto3's own IoT calls get
    SignatureDoesNotMatch once IAM is enforced. IoT behaviour is tested here; authorisation
    failures of IoT calls are tested against a canned HTTP peer.
    """
    with running_moto(tmp_path_factory, enforce_iam=False) as server:
        yield server


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=10) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False
