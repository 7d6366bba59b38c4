"""The classification of AWS answers and awscrt failures into :class:`agent.errors.AwsError`.

Every failure is sorted into one :class:`agent.errors.ErrorKind`; the checks map kinds to
statuses (a proven defect such as ``access_denied`` is CRITICAL, "could not verify" such as
``timeout`` is UNKNOWN).
Error codes: https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html#ErrorCodeList
and https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from agent.errors import AwsError, ErrorKind

# Codes meaning "these credentials are not usable", whatever the service.
_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidToken",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "TokenRefreshRequired",
        "IncompleteSignature",
        "InvalidSignatureException",
        "MissingAuthenticationToken",
        "RequestTimeTooSkewed",
        "RequestExpired",
    }
)
_THROTTLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
    }
)
_REGION_CODES = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"}
)
_NOT_FOUND_CODES = frozenset(
    {"NoSuchBucket", "NoSuchKey", "ResourceNotFoundException", "NotFound", "NoSuchEntity"}
)


def xml_text(body: bytes, tag: str) -> str | None:
    """The text of the first ``<tag>`` element of a small AWS XML answer, entities decoded.

    A regular expression, not an XML parser: AWS error and result documents are flat, and this
    cannot be made to expand entities or fetch DTDs whatever the body holds.
    """
    name = re.escape(tag.encode())
    match = re.search(rb"<" + name + rb"(?:\s[^<>]{0,512})?>([^<]{0,2048})</" + name + rb">", body)
    if match is None:
        return None
    return xml_unescape(match.group(1).decode("utf-8", "replace")).strip()


# XML 1.0 section 4.6 (predefined entities) and 4.1 (character references): all an AWS answer
# can hold. html.unescape would also do, but its table of 2,000 HTML names costs 0.5 MB of a
# long-running agent's memory for answers that never use them.
_XML_REFERENCE = re.compile(r"&(amp|lt|gt|quot|apos|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6});")
_PREDEFINED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def xml_unescape(text: str) -> str:
    """``text`` with XML entity and character references decoded (invalid ones as U+FFFD)."""

    def decode(match: re.Match[str]) -> str:
        ref = match.group(1)
        if not ref.startswith("#"):
            return _PREDEFINED[ref]
        code = int(ref[2:], 16) if ref[1] == "x" else int(ref[1:])
        valid = 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF
        return chr(code) if valid else "\ufffd"

    return _XML_REFERENCE.sub(decode, text) if "&" in text else text


def error_code(status: int, headers: Mapping[str, str], body: bytes) -> tuple[str | None, str]:
    """The AWS error code and message of an error answer (XML, JSON or bodiless HEAD)."""
    code = xml_text(body, "Code")
    message = xml_text(body, "Message") or ""
    if code is None:
        # REST-JSON services (IoT) name the error in a header, e.g. "ResourceNotFoundException:".
        amzn = headers.get("x-amzn-errortype", "")
        code = amzn.split(":", 1)[0] or None
        found = re.search(rb'"message"\s*:\s*"([^"]{0,1024})"', body, re.I)
        if found:
            message = found.group(1).decode("utf-8", "replace")
    return code, message


def classify(status: int, headers: Mapping[str, str], body: bytes, *, what: str) -> AwsError:
    """Turn an unsuccessful answer into an AwsError; ``what`` names the call for the message."""
    code, detail = error_code(status, headers, body)
    region = headers.get("x-amz-bucket-region") or xml_text(body, "Region")
    suffix = f": {detail}" if detail else ""
    label = f"{status} {code}" if code else str(status)
    if code in _CREDENTIAL_CODES:
        return AwsError(
            ErrorKind.BAD_CREDENTIALS,
            f"{what} rejected the credentials ({label}){suffix}",
            status=status,
            code=code,
        )
    if region and (status in (301, 307, 400) or code in _REGION_CODES):
        return AwsError(
            ErrorKind.WRONG_REGION,
            f"{what}: the bucket is in region {region}",
            status=status,
            code=code,
            region=region,
        )
    if status == 429 or code in _THROTTLE_CODES:
        return AwsError(
            ErrorKind.THROTTLED, f"{what} was throttled ({label})", status=status, code=code
        )
    if status == 403:
        return AwsError(
            ErrorKind.ACCESS_DENIED,
            f"{what} was denied ({label}){suffix}",
            status=status,
            code=code or "AccessDenied",
        )
    if status == 404 or code in _NOT_FOUND_CODES:
        return AwsError(
            ErrorKind.NOT_FOUND, f"{what}: not found ({label}){suffix}", status=status, code=code
        )
    if status >= 500:
        return AwsError(
            ErrorKind.SERVER_ERROR,
            f"{what} failed on the server side ({label})",
            status=status,
            code=code,
        )
    return AwsError(
        ErrorKind.UNEXPECTED,
        f"{what} got an unexpected answer ({label}){suffix}",
        status=status,
        code=code,
    )


def from_crt(exc: BaseException, *, where: str) -> AwsError:
    """Translate an awscrt exception (connect, TLS, stream) into an AwsError.

    awscrt names its errors (``AWS_IO_SOCKET_CONNECTION_REFUSED``, ``AWS_IO_DNS_QUERY_FAILED``,
    ``AWS_IO_TLS_ERROR_NEGOTIATION_FAILURE``...); the name is kept in the message so an
    operator can search for it.
    """
    name = str(getattr(exc, "name", "") or type(exc).__name__)
    if "TIMEOUT" in name or "TIMED_OUT" in name:
        return AwsError(ErrorKind.TIMEOUT, f"{where}: timed out ({name})")
    if "DNS" in name:
        return AwsError(ErrorKind.UNREACHABLE, f"{where}: DNS lookup failed ({name})")
    if "CONNECTION_REFUSED" in name:
        return AwsError(ErrorKind.UNREACHABLE, f"{where}: connection refused ({name})")
    if "TLS" in name:
        return AwsError(
            ErrorKind.UNREACHABLE,
            f"{where}: TLS negotiation failed ({name}); is the server certificate trusted?",
        )
    return AwsError(ErrorKind.UNREACHABLE, f"{where}: connection failed ({name})")
