"""Where AWS calls go: the standard endpoint variables, else the regional AWS endpoints.

Variables as the AWS SDKs define them (service-specific first, then the global one):
https://docs.aws.amazon.com/sdkref/latest/guide/feature-ss-endpoints.html. ``http://`` is
allowed there so tests and laptops can talk to a local moto server. A custom S3 endpoint is
addressed path-style (``/bucket/key``), as the SDKs do for non-AWS endpoints.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from agent.errors import AwsError, ErrorKind

DEFAULT_REGION = "us-east-1"

# Bucket names S3 accepts at all: agent.config.names.valid_bucket_name. Those that fit a TLS
# wildcard certificate as a host name label (virtual-hosted style):
_DNS_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
# DNS names (RFC 1123, "_" tolerated as resolvers do), IPv4, and IPv6 literals.
_HOST_RE = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9])?|[0-9A-Fa-f:.]+")


@dataclass(frozen=True)
class Endpoint:
    """A scheme, host and port to send requests to, plus a path prefix."""

    scheme: str
    host: str
    port: int
    base_path: str = ""
    custom: bool = False
    """Came from configuration (not the AWS default): S3 then uses path-style addressing."""

    @property
    def tls(self) -> bool:
        """Whether the connection uses TLS."""
        return self.scheme == "https"

    @property
    def host_header(self) -> str:
        """The Host header value (port only when not the scheme's default)."""
        default = 443 if self.tls else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """A printable URL of ``path`` on this endpoint (no query, so no secrets)."""
        return f"{self.scheme}://{self.host_header}{self.base_path}{path}"


def parse_endpoint(text: str, *, what: str, default_scheme: str = "https") -> Endpoint:
    """Parse ``https://host[:port][/path]``, ``http://...`` or a bare ``host[:port]``."""
    raw = text.strip()
    if "://" not in raw:
        raw = f"{default_scheme}://{raw}"
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise AwsError(
            ErrorKind.NOT_CONFIGURED, f"{what} {text!r} is not a valid URL: {exc}"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AwsError(
            ErrorKind.NOT_CONFIGURED,
            f"{what} {text!r} must be an http:// or https:// URL with a host",
        )
    if not _HOST_RE.fullmatch(parts.hostname):
        # e.g. the "<CONFIGURE_THIS>" placeholders of the nucleus-lite sample configuration
        raise AwsError(
            ErrorKind.NOT_CONFIGURED,
            f"{what} {text!r} does not name a host (a placeholder left unconfigured?)",
        )
    return Endpoint(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or (443 if parts.scheme == "https" else 80),
        base_path=parts.path.rstrip("/"),
        custom=True,
    )


def dns_suffix(region: str) -> str:
    """The AWS DNS suffix of a region's partition."""
    return "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def partition(region: str) -> str:
    """The ARN partition of a region (``aws``, ``aws-cn``, ``aws-us-gov``)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def resolve_region(nucleus_region: str | None, env: Mapping[str, str]) -> tuple[str, str]:
    """The region to use and where it came from: nucleus ``awsRegion``, ``AWS_REGION``, default."""
    for value, origin in (
        (nucleus_region, "nucleus awsRegion"),
        (env.get("AWS_REGION"), "AWS_REGION"),
        (env.get("AWS_DEFAULT_REGION"), "AWS_DEFAULT_REGION"),
    ):
        if value and _REGION_RE.fullmatch(value.strip()):
            return value.strip(), origin
    return DEFAULT_REGION, "default (no awsRegion or AWS_REGION)"


def service_endpoint(service: str, region: str, env: Mapping[str, str]) -> Endpoint:
    """The endpoint of ``service`` (``s3``, ``sts``, ``iot``) in ``region``."""
    override = env.get(f"AWS_ENDPOINT_URL_{service.upper()}") or env.get("AWS_ENDPOINT_URL")
    if override:
        return parse_endpoint(override, what=f"AWS_ENDPOINT_URL_{service.upper()}")
    host = f"{service}.{region}.{dns_suffix(region)}"
    return Endpoint(scheme="https", host=host, port=443)


def s3_target(endpoint: Endpoint, region: str, bucket: str, key: str = "") -> tuple[Endpoint, str]:
    """The endpoint and URL path of a bucket or object request.

    Virtual-hosted style on AWS (``bucket.s3.region.amazonaws.com``); path style on a custom
    endpoint or when the name does not fit in a TLS wildcard (dots, upper case):
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html
    """
    encoded_key = quote(key, safe="/~")
    if endpoint.custom or not _DNS_BUCKET_RE.fullmatch(bucket):
        base = (
            endpoint
            if endpoint.custom
            else Endpoint("https", f"s3.{region}.{dns_suffix(region)}", 443)
        )
        path = f"{base.base_path}/{quote(bucket, safe='')}"
        return base, f"{path}/{encoded_key}" if key else path
    host = f"{bucket}.s3.{region}.{dns_suffix(region)}"
    return Endpoint("https", host, 443), f"/{encoded_key}"
