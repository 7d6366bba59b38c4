"""Fixtures of the certificate tests: a shared test CA, a realistic Greengrass root, a runner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agent.checks.base import CheckContext
from agent.checks.certificates import CHECKS
from agent.greengrass.root import GreengrassRoot
from agent.report import CheckResult
from tests.pki import Issued, make_ca, make_device_cert, make_greengrass_root, rsa_key

Run = Callable[..., list[CheckResult]]


@pytest.fixture(scope="session")
def device_ca() -> Issued:
    """A stand-in for the AWS IoT device-certificate CA (RSA, like AWS's)."""
    return make_ca("Test AWS IoT Device CA", key=rsa_key())


@pytest.fixture(scope="session")
def device(device_ca: Issued) -> Issued:
    """An AWS-IoT-shaped device certificate (RSA 2048, no SAN, no EKU) with its key."""
    return make_device_cert(device_ca)


@pytest.fixture
def gg_root(tmp_path: Path, device: Issued) -> GreengrassRoot:
    """A healthy Greengrass root: device cert, 600 key, the real Amazon Root CA 1."""
    return make_greengrass_root(tmp_path, device=device)


@pytest.fixture
def run() -> Run:
    """``run(ctx, "certificate.validity")`` -> that check's results (all checks when no id)."""

    def _run(ctx: CheckContext, check_id: str | None = None) -> list[CheckResult]:
        out: list[CheckResult] = []
        for chk in CHECKS:
            if check_id is None or chk.id == check_id:
                out.extend(chk(ctx))
        if check_id is not None:
            assert all(r.id == check_id for r in out)
        return out

    return _run


def one(results: list[CheckResult], target: str | Path) -> CheckResult:
    """The single result about ``target``."""
    found = [r for r in results if r.target == str(target)]
    assert len(found) == 1, f"expected one result for {target}, got {found}"
    return found[0]


def bytes_read() -> int:
    """Bytes this process has read so far (``rchar``): what proves a file was, or was not, read."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar")
