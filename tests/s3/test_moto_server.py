"""The moto server itself: behaviour the S3 verdict tests rely on, checked on its own.

When a moto upgrade (``make lock UPGRADE=moto``) breaks one of these, the S3 verdict tests
would fail in puzzling ways; this file names the moto bug instead.
"""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError

from tests.peers.moto import MotoServer


def _status(call: object) -> int:
    """The HTTP status of a boto3 call: 200, or the error's status."""
    try:
        call()  # type: ignore[operator]
    except ClientError as exc:
        return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])
    return 200


def test_head_object_is_authorised_as_get_object_after_a_head_bucket(
    moto_server: MotoServer,
) -> None:
    """HeadObject is authorised as s3:GetObject, whatever HEAD request came before it.

    moto 5.2.6 keeps the IAM action of the previous HEAD request: after one HeadBucket, every
    HeadObject of a user allowed only s3:GetObject is refused with 403 (GetObject of the same
    key still gives 200). requirements/constraints.txt holds 5.2.6 back.
    """
    bucket = f"gg-moto-head-{uuid.uuid4().hex[:8]}"
    admin = moto_server.client("s3")
    admin.create_bucket(Bucket=bucket)
    admin.put_object(Bucket=bucket, Key="artifact.zip", Body=b"x")
    user = moto_server.client(
        "s3",
        **moto_server.create_user(
            f"getobject-only-{bucket}",
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": f"arn:aws:s3:::{bucket}/*",
                    }
                ],
            },
        ),
    )

    def head_object() -> object:
        return user.head_object(Bucket=bucket, Key="artifact.zip")

    before = _status(head_object)
    # A bucket-level HEAD of the admin (allowed) and of the user (not allowed: s3:ListBucket).
    assert _status(lambda: admin.head_bucket(Bucket=bucket)) == 200
    assert _status(lambda: user.head_bucket(Bucket=bucket)) == 403
    after = _status(head_object)
    if (before, after) != (200, 200):
        pytest.fail(
            f"HeadObject by a user allowed s3:GetObject gave {before}, and {after} after a "
            "HeadBucket: this moto release does not authorise HeadObject as s3:GetObject (the "
            "moto 5.2.6 bug: a HEAD is authorised with the IAM action of the HEAD before it). "
            "Keep it out in requirements/constraints.txt and run `make lock` again.",
            pytrace=False,
        )
    assert _status(lambda: user.get_object(Bucket=bucket, Key="artifact.zip")) == 200
