"""SigV4 signing with ``awscrt.auth.aws_sign_request``.

S3 is signed with ``UNSIGNED-PAYLOAD`` and single URI encoding (S3's own rules); every other
service signs the body hash and double-encodes the path:
https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html
"""

from __future__ import annotations

from io import BytesIO
from typing import TYPE_CHECKING

from agent.aws.endpoints import Endpoint
from agent.errors import AwsError, ErrorKind

if TYPE_CHECKING:
    from agent.aws.credentials import Credentials

SIGNING_TIMEOUT_SECONDS = 5.0


def sign(
    *,
    method: str,
    endpoint: Endpoint,
    path: str,
    headers: list[tuple[str, str]],
    body: bytes | None,
    credentials: Credentials,
    region: str,
    service: str,
) -> list[tuple[str, str]]:
    """The request headers plus ``Authorization``, ``X-Amz-Date`` (and the token header)."""
    from awscrt.auth import (
        AwsSignedBodyHeaderType,
        AwsSignedBodyValue,
        AwsSigningConfig,
        aws_sign_request,
    )
    from awscrt.http import HttpHeaders, HttpRequest

    is_s3 = service == "s3"
    all_headers = [("Host", endpoint.host_header), *headers]
    request = HttpRequest(
        method, path, HttpHeaders(all_headers), BytesIO(body) if body is not None else None
    )
    config = AwsSigningConfig(
        credentials_provider=credentials.provider(),
        region=region,
        service=service,
        use_double_uri_encode=not is_s3,
        should_normalize_uri_path=not is_s3,
        signed_body_value=AwsSignedBodyValue.UNSIGNED_PAYLOAD if is_s3 else None,
        signed_body_header_type=(
            AwsSignedBodyHeaderType.X_AMZ_CONTENT_SHA_256 if is_s3 else AwsSignedBodyHeaderType.NONE
        ),
    )
    try:
        aws_sign_request(request, config).result(timeout=SIGNING_TIMEOUT_SECONDS)
    except Exception as exc:  # only malformed credentials make local signing fail
        name = getattr(exc, "name", type(exc).__name__)
        raise AwsError(
            ErrorKind.BAD_CREDENTIALS, f"cannot sign a {service} request ({name})"
        ) from None
    return list(request.headers)
