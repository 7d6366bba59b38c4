"""IAM actions behind the S3 calls the audit makes, and the policy statement that grants them.

Actions per operation: https://docs.aws.amazon.com/AmazonS3/latest/userguide/using-with-s3-policy-actions.html
(HeadBucket needs ``s3:ListBucket``; HeadObject needs ``s3:GetObject``). Artifact access as the
Greengrass guide grants it: https://docs.aws.amazon.com/greengrass/v2/developerguide/device-service-role.html
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

ACTIONS = {
    "HeadBucket": "s3:ListBucket",
    "GetBucketLocation": "s3:GetBucketLocation",
    "HeadObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "DeleteObject": "s3:DeleteObject",
}
_BUCKET_LEVEL = frozenset({"s3:ListBucket", "s3:GetBucketLocation"})


def bucket_arn(bucket: str, partition: str) -> str:
    """``arn:aws:s3:::bucket`` in the ARN partition (``aws``, ``aws-cn``, ``aws-us-gov``)."""
    return f"arn:{partition}:s3:::{bucket}"


def resource_for(action: str, bucket: str, partition: str, object_pattern: str) -> str:
    """The resource ARN ``action`` needs: the bucket, or objects matching ``object_pattern``."""
    if action in _BUCKET_LEVEL:
        return bucket_arn(bucket, partition)
    return f"{bucket_arn(bucket, partition)}/{object_pattern}"


def statements(grants: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """Allow statements for (action, resource) pairs, one statement per resource."""
    by_resource: dict[str, list[str]] = {}
    for action, resource in grants:
        actions = by_resource.setdefault(resource, [])
        if action not in actions:
            actions.append(action)
    return [
        {
            "Effect": "Allow",
            "Action": actions[0] if len(actions) == 1 else actions,
            "Resource": resource,
        }
        for resource, actions in by_resource.items()
    ]


def statements_json(grants: Iterable[tuple[str, str]]) -> str:
    """The statements as compact JSON, ready to paste into the role's policy."""
    found = statements(grants)
    return json.dumps(found[0] if len(found) == 1 else found, separators=(", ", ": "))
