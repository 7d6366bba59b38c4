"""Audit of ``aws.greengrass.LegacySubscriptionRouter``'s ``subscriptions``.

Each subscription ``<id>: {id, source, subject, target}`` routes what a V1-style Lambda function
publishes on ``subject`` (a topic filter) to ``target``. ``id`` must equal its key. ``source`` is
a Lambda function: ``component:<name>`` (router v2.1.0 and later) or the function's ARN with a
version number (no ``$LATEST``, no alias); ``target`` is that too, or ``cloud`` for AWS IoT Core.
https://docs.aws.amazon.com/greengrass/v2/developerguide/legacy-subscription-router-component.html
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agent.report import Finding, Status, Verdict
from agent.subscriptions.topics import aws_iot_limit_problem, filter_problem

ROUTER_COMPONENT = "aws.greengrass.LegacySubscriptionRouter"
CLOUD = "cloud"
COMPONENT_PREFIX = "component:"
_LAMBDA_ARN = re.compile(
    r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(?::(?P<qualifier>[^:]+))?"
)
_DOC = (
    "https://docs.aws.amazon.com/greengrass/v2/developerguide/"
    "legacy-subscription-router-component.html"
)


def audit_router(
    configuration: Mapping[str, Any], services: Mapping[str, Any], router_version: str | None
) -> list[Verdict]:
    """One verdict per subscription of the router ``configuration`` (none without any)."""
    subscriptions = configuration.get("subscriptions")
    if subscriptions is None or subscriptions == {}:
        return []
    if not isinstance(subscriptions, Mapping):
        return [
            Verdict(
                "subscriptions",
                "",
                (
                    Finding(
                        Status.CRITICAL,
                        "malformed_subscription",
                        f"subscriptions is a {type(subscriptions).__name__}, not a mapping of "
                        "id to {id, source, subject, target}",
                        f"give subscriptions as an object ({_DOC})",
                    ),
                ),
            )
        ]
    components_supported = router_version is None or not router_version.startswith("2.0.")
    return [
        _audit(str(key), entry, services, components_supported)
        for key, entry in subscriptions.items()
    ]


def _audit(key: str, entry: Any, services: Mapping[str, Any], components_ok: bool) -> Verdict:
    if not isinstance(entry, Mapping):
        return Verdict(
            key,
            "",
            (
                Finding(
                    Status.CRITICAL,
                    "malformed_subscription",
                    "is not a mapping of id, source, subject and target",
                    f"define the subscription as {{id, source, subject, target}} ({_DOC})",
                ),
            ),
        )
    found: list[Finding] = []
    sub_id = entry.get("id")
    if sub_id is None or str(sub_id) != key:
        what = "has no id" if sub_id is None else f"has id '{sub_id}'"
        found.append(
            Finding(
                Status.CRITICAL,
                "id_mismatch",
                f"{what}; the id must equal the subscription's key",
                f"set id: {key}",
            )
        )
    source, target, subject = entry.get("source"), entry.get("target"), entry.get("subject")
    found.extend(_endpoint("source", source, services, components_ok))
    found.extend(_endpoint("target", target, services, components_ok))
    problem = (
        "is missing"
        if subject is None
        else "is not text"
        if not isinstance(subject, str)
        else filter_problem(subject)
    )
    if problem is None and target == CLOUD:
        limit = aws_iot_limit_problem(str(subject))
        problem = f"{limit} for a subject sent to AWS IoT Core" if limit else None
    if problem:
        found.append(
            Finding(
                Status.CRITICAL,
                "bad_subject",
                f"subject {problem}",
                "set subject to a valid MQTT topic or topic filter",
            )
        )
    return Verdict(
        key,
        f"{source} -> {target} on '{subject}'",
        tuple(found),
        {"subscription": key, "source": source, "target": target, "subject": subject},
    )


def _endpoint(
    end: str, value: Any, services: Mapping[str, Any], components_ok: bool
) -> list[Finding]:
    def bad(code: str, message: str, fix: str) -> list[Finding]:
        return [Finding(Status.CRITICAL, code, f"{end} {message}", fix)]

    lambda_fix = (
        f"set {end} to component:<Lambda component name> or the Lambda function ARN "
        "with its version number"
    )
    if not isinstance(value, str) or not value:
        return bad(f"bad_{end}", "is missing", lambda_fix)
    if value == CLOUD:
        if end == "target":
            return []
        return bad(
            "cloud_source",
            "is cloud, but the router only routes what Lambda functions publish",
            "deliver AWS IoT Core messages to a Lambda function with its "
            "event sources (topic type IOT_CORE) instead",
        )
    if value.startswith(COMPONENT_PREFIX):
        name = value[len(COMPONENT_PREFIX) :]
        if not components_ok:
            return bad(
                "component_form_unsupported",
                f"uses '{value}', which router v2.0.x does not understand",
                "deploy router v2.1.0 or later, or use the Lambda function ARN with its version",
            )
        if name not in services:
            return bad(
                "unknown_component",
                f"names component {name}, which is not deployed on this device",
                f"deploy {name} or fix the component name in {end}",
            )
        return []
    match = _LAMBDA_ARN.fullmatch(value)
    if match is None:
        return bad(
            f"bad_{end}",
            f"'{value}' is neither {'cloud, ' if end == 'target' else ''}"
            "component:<name> nor a Lambda function ARN",
            lambda_fix,
        )
    qualifier = match.group("qualifier")
    if qualifier is None or not qualifier.isdigit():
        what = "no version" if qualifier is None else f"the qualifier '{qualifier}'"
        return bad(
            "unversioned_lambda",
            f"Lambda ARN has {what}; the router routes only to the exact function version",
            f"end the ARN of {end} with the function's version number (not $LATEST or an alias)",
        )
    return []
