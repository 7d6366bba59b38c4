"""The five S3 calls the audit makes, each raising a classified AwsError on failure.

API reference: https://docs.aws.amazon.com/AmazonS3/latest/API/API_Operations_Amazon_Simple_Storage_Service.html
A redirect to another region (301/400 with ``x-amz-bucket-region``) is followed once, signed for
the region S3 names; the caller learns of it through :attr:`BucketRegions.moved`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.aws.classify import classify, xml_text
from agent.aws.endpoints import s3_target
from agent.aws.http import Response
from agent.aws.session import AwsSession
from agent.errors import AwsError, ErrorKind


@dataclass
class BucketRegions:
    """Regions learnt per bucket during a cycle (GetBucketLocation or a redirect)."""

    known: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, bucket: str) -> str | None:
        """The bucket's region, if learnt."""
        with self.lock:
            return self.known.get(bucket)

    def set(self, bucket: str, region: str) -> None:
        """Remember the bucket's region."""
        with self.lock:
            self.known[bucket] = region


def location_to_region(constraint: str | None) -> str:
    """GetBucketLocation's LocationConstraint as a region: empty is us-east-1, ``EU`` eu-west-1.

    https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketLocation.html
    """
    if not constraint:
        return "us-east-1"
    return "eu-west-1" if constraint == "EU" else constraint


class S3:
    """S3 calls over an AwsSession, following one cross-region redirect per call."""

    def __init__(self, session: AwsSession, regions: BucketRegions | None = None) -> None:
        self.session = session
        self.regions = regions or BucketRegions()
        self._endpoint = session.endpoint("s3")

    def get_bucket_location(self, bucket: str) -> str:
        """The bucket's region (s3:GetBucketLocation)."""
        what = f"GetBucketLocation s3://{bucket}"
        response = self._call("GET", bucket, "", "location", what)
        region = location_to_region(xml_text(response.body, "LocationConstraint"))
        self.regions.set(bucket, region)
        return region

    def head_bucket(self, bucket: str) -> None:
        """HeadBucket (s3:ListBucket)."""
        self._call("HEAD", bucket, "", "", f"HeadBucket s3://{bucket}")

    def head_object(self, bucket: str, key: str) -> int:
        """HeadObject (s3:GetObject); the object's size in bytes."""
        response = self._call("HEAD", bucket, key, "", f"HeadObject s3://{bucket}/{key}")
        try:
            return int(response.headers.get("content-length", "0"))
        except ValueError:
            return 0

    def put_object(self, bucket: str, key: str, body: bytes) -> None:
        """PutObject (s3:PutObject) of a small body."""
        self._call(
            "PUT",
            bucket,
            key,
            "",
            f"PutObject s3://{bucket}/{key}",
            body=body,
            headers=[("Content-Type", "text/plain")],
        )

    def delete_object(self, bucket: str, key: str) -> None:
        """DeleteObject (s3:DeleteObject)."""
        self._call("DELETE", bucket, key, "", f"DeleteObject s3://{bucket}/{key}")

    def _call(
        self,
        method: str,
        bucket: str,
        key: str,
        query: str,
        what: str,
        *,
        body: bytes | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> Response:
        region = self.regions.get(bucket) or self.session.region
        response = self._send(method, bucket, key, query, what, region, body, headers)
        error = _failure(response, what)
        moved = error.region if error and error.kind is ErrorKind.WRONG_REGION else None
        if moved and moved != region:
            # S3 names the bucket's region; sign for it and ask once more.
            region = moved
            self.regions.set(bucket, region)
            response = self._send(method, bucket, key, query, what, region, body, headers)
            error = _failure(response, what)
        if error:
            raise error
        return response

    def _send(
        self,
        method: str,
        bucket: str,
        key: str,
        query: str,
        what: str,
        region: str,
        body: bytes | None,
        headers: list[tuple[str, str]] | None,
    ) -> Response:
        endpoint, path = s3_target(self._endpoint, region, bucket, key)
        if query:
            path = f"{path}?{query}"
        return self.session.send(
            service="s3",
            method=method,
            endpoint=endpoint,
            path=path,
            what=what,
            region=region,
            headers=headers,
            body=body,
        )


def _failure(response: Response, what: str) -> AwsError | None:
    """The classified error of a failed answer, None for a success."""
    return (
        None
        if response.ok
        else classify(response.status, response.headers, response.body, what=what)
    )


def guarded(call: Callable[[], object]) -> AwsError | None:
    """Run ``call``; its AwsError is returned instead of raised (None on success)."""
    try:
        call()
    except AwsError as exc:
        return exc
    return None
