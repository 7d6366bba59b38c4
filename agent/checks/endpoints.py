"""``system.endpoint``'s targets and verdicts: the endpoints the nucleus uses, and what the
handshakes of :mod:`agent.aws.reach` say about each.

Endpoints and ports: https://docs.aws.amazon.com/greengrass/v2/developerguide/allow-device-traffic.html
- the AWS IoT data endpoint (``iotDataEndpoint``) for MQTT on the nucleus's ``mqtt.port``
  (8883, or 443 with ALPN ``x-amzn-mqtt-ca``:
  https://docs.aws.amazon.com/iot/latest/developerguide/protocols.html);
- the credentials endpoint (``iotCredEndpoint``) on 443;
- the Greengrass data plane ``greengrass-ats.iot.<region>.amazonaws.com`` (or the data endpoint
  with ``greengrassDataPlaneEndpoint: iotdata``) on ``greengrassDataPlanePort`` (8443 or 443).
``AWS_ENDPOINT_URL_IOT_DATA_PLANE`` (the SDKs' variable for the IoT data plane) names where the
data endpoint answers on 443, the ALPN alternative; tests point it at loopback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.aws.endpoints import Endpoint, dns_suffix, parse_endpoint
from agent.aws.reach import (
    ALPN_MQTT,
    DNS_ERRORS,
    NETWORK_ERRORS,
    REFUSED_ERRORS,
    TCP_TIMEOUT_ERRORS,
    Handshake,
    Reach,
)
from agent.errors import AwsError
from agent.report import Finding, Status, Verdict

CHECK_ID = "system.endpoint"
MQTT_PORT = 8883
DATA_PLANE_PORT = 8443
HTTPS_PORT = 443


@dataclass(frozen=True)
class Target:
    """One endpoint the nucleus connects to."""

    role: str
    """``iot_data``, ``iot_credentials`` or ``greengrass_data_plane``."""
    host: str
    port: int
    alpn: tuple[str, ...]
    setting: str
    """The configuration keys that name it, for messages."""
    alternative: tuple[str, int, tuple[str, ...]] | None = None
    """Where the same service answers on 443 (host, port, ALPN), tried when ``port`` is blocked."""
    port_setting: str = ""
    """The nucleus key that would select the alternative port."""

    @property
    def name(self) -> str:
        """``host:port``, the result's target."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Unconfigured:
    """An endpoint the configuration does not name (or names badly)."""

    role: str
    setting: str
    message: str


def _int(value: Any, default: int) -> int:
    try:
        port = int(str(value)) if value is not None and not isinstance(value, bool) else default
    except ValueError:
        return default
    return port if 0 < port < 65536 else default


def _configured(
    nucleus: Mapping[str, Any], setting: str, role: str, missing: list[Unconfigured]
) -> Endpoint | None:
    """The endpoint the nucleus setting names, or None with the reason added to ``missing``."""
    raw = nucleus.get(setting)
    if not isinstance(raw, str) or not raw.strip():
        missing.append(Unconfigured(role, setting, f"{setting} is not configured"))
        return None
    try:
        return parse_endpoint(raw, what=setting)
    except AwsError as exc:
        missing.append(Unconfigured(role, setting, str(exc)))
        return None


def targets(
    nucleus: Mapping[str, Any], region: str, env: Mapping[str, str]
) -> tuple[list[Target], list[Unconfigured]]:
    """The endpoints of the nucleus configuration ``nucleus``, in a fixed order."""
    found: list[Target] = []
    missing: list[Unconfigured] = []
    mqtt = nucleus.get("mqtt") if isinstance(nucleus.get("mqtt"), Mapping) else {}
    mqtt_port = _int((mqtt or {}).get("port"), MQTT_PORT)
    data_host: str | None = None
    data = _configured(nucleus, "iotDataEndpoint", "iot_data", missing)
    if data is not None:
        data_host = data.host
        alternative = None
        if mqtt_port != HTTPS_PORT:
            override = env.get("AWS_ENDPOINT_URL_IOT_DATA_PLANE")
            alt_host, alt_port = data.host, HTTPS_PORT
            if override:
                try:
                    alt = parse_endpoint(override, what="AWS_ENDPOINT_URL_IOT_DATA_PLANE")
                    alt_host, alt_port = alt.host, alt.port
                except AwsError:
                    pass
            alternative = (alt_host, alt_port, (ALPN_MQTT,))
        found.append(
            Target(
                "iot_data",
                data.host,
                mqtt_port,
                (ALPN_MQTT,) if mqtt_port == HTTPS_PORT else (),
                "iotDataEndpoint, mqtt.port",
                alternative,
                "mqtt.port",
            )
        )
    cred = _configured(nucleus, "iotCredEndpoint", "iot_credentials", missing)
    if cred is not None:
        found.append(Target("iot_credentials", cred.host, cred.port, (), "iotCredEndpoint"))
    plane_port = _int(nucleus.get("greengrassDataPlanePort"), DATA_PLANE_PORT)
    plane_setting = str(nucleus.get("greengrassDataPlaneEndpoint") or "").strip().lower()
    plane_host = (
        data_host
        if plane_setting == "iotdata" and data_host
        else f"greengrass-ats.iot.{region}.{dns_suffix(region)}"
    )
    found.append(
        Target(
            "greengrass_data_plane",
            plane_host,
            plane_port,
            (),
            "greengrassDataPlanePort" + (", greengrassDataPlaneEndpoint" if plane_setting else ""),
            (plane_host, HTTPS_PORT, ()) if plane_port != HTTPS_PORT else None,
            "greengrassDataPlanePort",
        )
    )
    return found, missing


def _no_answer(h: Handshake) -> bool:
    """No network answer at all: no resolver, no route, or a TCP connect nobody answered."""
    return (h.error in DNS_ERRORS) or (h.error in NETWORK_ERRORS) or (h.error in TCP_TIMEOUT_ERRORS)


def network_down(reaches: Sequence[Reach]) -> bool:
    """Every endpoint failed before any server answered: the network, not an endpoint, is out."""
    return bool(reaches) and all(_no_answer(r.verified) for r in reaches)


def _legacy(host: str) -> bool:
    # Legacy (VeriSign/Symantec-signed) data endpoints lack "-ats"; Amazon Root CA 1 does not
    # verify them: https://docs.aws.amazon.com/iot/latest/developerguide/server-authentication.html
    return ".iot." in host and "-ats." not in host and not host.startswith("greengrass-ats.")


def verdict(
    target: Target,
    reach: Reach,
    alternative: Reach | None,
    *,
    bundle: str,
    timeout: float,
    offline: bool,
) -> Verdict:
    """The result of one endpoint."""
    v, u = reach.verified, reach.unverified
    details: dict[str, Any] = {
        "role": target.role,
        "host": target.host,
        "port": target.port,
        "alpn": list(target.alpn),
        "setting": target.setting,
    }
    if v.ok:
        details["handshake_ms"] = round(v.seconds * 1000, 1)
    findings: list[Finding] = []
    fix_bundle = (
        f"use the ATS endpoint (`aws iot describe-endpoint --endpoint-type iot:Data-ATS`) and "
        f"put Amazon Root CA 1 (https://www.amazontrust.com/repository/AmazonRootCA1.pem) in "
        f"{bundle}"
    )
    fix_cert = (
        "check in AWS IoT that the device certificate is registered and ACTIVE in this account "
        "and region (`aws iot describe-certificate`), and that the endpoint is this account's"
    )
    if offline or v.error in NETWORK_ERRORS:
        findings.append(
            Finding(
                Status.UNKNOWN,
                "network_down",
                f"not verified: no network answer ({v.error or 'offline'}); the device seems to "
                "have no network",
                "check the device's network connection and DNS",
            )
        )
    elif v.ok and not v.closed_by_server:
        pass
    elif v.ok and v.closed_by_server:
        findings.append(
            Finding(
                Status.CRITICAL,
                "client_cert_refused",
                "the server closed the connection right after the handshake: it refused the "
                f"device certificate ({v.close_error or 'connection closed'})",
                fix_cert,
            )
        )
    elif v.error in DNS_ERRORS:
        findings.append(
            Finding(
                Status.CRITICAL,
                "dns_failure",
                f"{target.host} does not resolve ({v.error}) while other endpoints do: a typo "
                f"in {target.setting.split(',')[0]}, or a DNS server that does not know it",
                f"check {target.setting.split(',')[0]} against `aws iot describe-endpoint` and the "
                "device's DNS configuration (/etc/resolv.conf)",
            )
        )
    elif v.error in REFUSED_ERRORS or v.error in TCP_TIMEOUT_ERRORS:
        how = "refused" if v.error in REFUSED_ERRORS else "not answered (filtered)"
        message = f"TCP connections to port {target.port} are {how}: the port is blocked"
        fix = f"open outbound TCP {target.port} to {target.host} in the firewall"
        if alternative is not None and alternative.verified.ok:
            a = alternative.verified
            if not a.closed_by_server:
                alpn = f" with ALPN {ALPN_MQTT}" if alternative.alpn else ""
                message += (
                    f"; port {alternative.port}{alpn} works ({alternative.host}:{alternative.port})"
                )
                fix = (
                    f"set the nucleus's {target.port_setting} to 443 (a deployment's "
                    f"configuration merge of aws.greengrass.Nucleus), or " + fix
                )
                details["alternative"] = f"{alternative.host}:{alternative.port}"
                details["alternative_alpn"] = list(alternative.alpn)
        findings.append(Finding(Status.CRITICAL, "port_blocked", message, fix))
    elif u is not None and u.ok:
        legacy = ""
        if _legacy(target.host):
            legacy = f"; {target.host} looks like a legacy (non-ATS) endpoint"
        findings.append(
            Finding(
                Status.CRITICAL,
                "server_not_verified",
                f"the server's certificate does not verify against the root CA bundle {bundle} "
                f"(the handshake succeeds only without verification){legacy}",
                fix_bundle,
            )
        )
    elif v.timed_out and (u is None or u.timed_out):
        findings.append(
            Finding(
                Status.UNKNOWN,
                "timeout",
                f"no TLS handshake within {timeout:.0f} s: the endpoint accepts TCP but does "
                "not answer (a proxy or middlebox in the way?)",
                f"check what answers on {target.host}:{target.port} from the device "
                "(a transparent proxy must pass TLS through)",
            )
        )
    else:
        findings.append(
            Finding(
                Status.CRITICAL,
                "handshake_failed",
                "the TLS handshake fails with and without verifying the server "
                f"({v.error or 'timeout'}/{(u.error or 'timeout') if u else '-'}): the server "
                "refused the device certificate, or does not speak TLS on this port",
                fix_cert,
            )
        )
    ok = (
        f"resolved, connected, TLS verified by {bundle} and the device certificate accepted "
        f"in {v.seconds * 1000:.0f} ms{' (ALPN ' + ALPN_MQTT + ')' if target.alpn else ''}; "
        "no MQTT CONNECT sent"
    )
    return Verdict(target.name, ok, tuple(findings), details)
