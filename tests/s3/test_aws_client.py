"""The awscrt client pieces on their own: endpoints, connection reuse, timeouts, lazy imports."""

from __future__ import annotations

import pytest

from agent.aws.classify import classify
from agent.aws.endpoints import (
    parse_endpoint,
    partition,
    resolve_region,
    s3_target,
    service_endpoint,
)
from agent.aws.http import HttpClient
from agent.aws.s3 import location_to_region
from agent.config.names import valid_bucket_name
from agent.errors import AwsError, ErrorKind
from tests.conftest import modules_loaded_by
from tests.peers.silent import Blackhole, Canned


def test_service_specific_endpoint_variable_wins_over_the_global_one() -> None:
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:1000",
        "AWS_ENDPOINT_URL_S3": "http://localhost:2000/base/",
    }
    s3 = service_endpoint("s3", "eu-west-1", env)
    assert (s3.scheme, s3.host, s3.port, s3.base_path, s3.custom) == (
        "http",
        "localhost",
        2000,
        "/base",
        True,
    )
    sts = service_endpoint("sts", "eu-west-1", env)
    assert (sts.host, sts.port) == ("127.0.0.1", 1000)
    iot = service_endpoint("iot", "cn-north-1", {})
    assert (iot.scheme, iot.host, iot.port, iot.custom) == (
        "https",
        "iot.cn-north-1.amazonaws.com.cn",
        443,
        False,
    )


def test_addressing_style() -> None:
    aws = service_endpoint("s3", "us-west-2", {})
    host, path = s3_target(aws, "us-west-2", "my-bucket", "a b/c.zip")
    assert (host.host, path) == ("my-bucket.s3.us-west-2.amazonaws.com", "/a%20b/c.zip")
    # Dots break the TLS wildcard: path style on the regional endpoint.
    host, path = s3_target(aws, "us-west-2", "my.bucket", "k")
    assert (host.host, path) == ("s3.us-west-2.amazonaws.com", "/my.bucket/k")
    custom = parse_endpoint("http://127.0.0.1:9000", what="test")
    host, path = s3_target(custom, "us-west-2", "my-bucket", "")
    assert (host.host, host.port, path) == ("127.0.0.1", 9000, "/my-bucket")


def test_region_resolution_order() -> None:
    assert resolve_region("eu-central-1", {"AWS_REGION": "us-west-2"}) == (
        "eu-central-1",
        "nucleus awsRegion",
    )
    assert resolve_region(None, {"AWS_REGION": "us-west-2"}) == ("us-west-2", "AWS_REGION")
    assert resolve_region("not a region", {})[0] == "us-east-1"
    assert partition("us-gov-west-1") == "aws-us-gov" and partition("cn-north-1") == "aws-cn"


def test_bucket_names_and_locations() -> None:
    assert valid_bucket_name("gg-artifacts-123") and valid_bucket_name("BUCKET_NAME")
    assert not valid_bucket_name("$bucketName$") and not valid_bucket_name("ab")
    assert not valid_bucket_name("a..b")
    assert location_to_region(None) == "us-east-1"
    assert location_to_region("EU") == "eu-west-1"
    assert location_to_region("ap-south-1") == "ap-south-1"


@pytest.mark.parametrize("url", ["ftp://host", "http://", "http://host:99999"])
def test_bad_endpoint_urls_are_not_configured(url: str) -> None:
    with pytest.raises(AwsError) as caught:
        parse_endpoint(url, what="AWS_ENDPOINT_URL")
    assert caught.value.kind is ErrorKind.NOT_CONFIGURED
    assert "AWS_ENDPOINT_URL" in caught.value.message


def test_wrong_region_needs_the_region_header_or_element() -> None:
    moved = classify(
        400,
        {},
        b"<Error><Code>AuthorizationHeaderMalformed</Code><Region>eu-west-1</Region></Error>",
        what="x",
    )
    assert moved.kind is ErrorKind.WRONG_REGION and moved.region == "eu-west-1"
    # HeadBucket's 403 carries x-amz-bucket-region too: still a denial, not a redirect.
    denied = classify(403, {"x-amz-bucket-region": "eu-west-1"}, b"", what="x")
    assert denied.kind is ErrorKind.ACCESS_DENIED


@pytest.mark.peer
def test_connections_are_kept_alive_and_reused(canned: Canned) -> None:
    canned.answer(200, b"ok")
    client = HttpClient()
    endpoint = parse_endpoint(canned.url, what="test")
    for _ in range(3):
        response = client.request(
            "GET", endpoint, "/", [("Host", endpoint.host_header)], None, timeout=5
        )
        assert response.status == 200 and response.body == b"ok"
    assert len({r["client_port"] for r in canned.requests}) == 1
    client.close()


@pytest.mark.peer
def test_connection_close_is_honoured(canned: Canned) -> None:
    canned.answer(200, b"bye", Connection="close")
    client = HttpClient()
    endpoint = parse_endpoint(canned.url, what="test")
    for _ in range(2):
        assert client.request(
            "GET", endpoint, "/", [("Host", endpoint.host_header)], None, timeout=5
        ).ok
    assert len({r["client_port"] for r in canned.requests}) == 2


@pytest.mark.peer
def test_a_silent_server_costs_the_timeout_not_a_hang(blackhole: Blackhole) -> None:
    endpoint = parse_endpoint(f"http://127.0.0.1:{blackhole.port}", what="test")
    with pytest.raises(AwsError) as caught:
        HttpClient().request("GET", endpoint, "/", [("Host", "x")], None, timeout=0.3)
    assert caught.value.kind is ErrorKind.TIMEOUT
    assert "no answer within" in caught.value.message


def test_importing_the_s3_checks_loads_no_awscrt_http() -> None:
    code = "import agent.checks.s3, agent.aws.iot, agent.greengrass.recipes"
    assert modules_loaded_by(code, ["awscrt.http", "awscrt.auth"]) == []
