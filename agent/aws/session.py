"""One cycle's AWS session: credentials, region, endpoints, the cycle budget, and sign-and-send.

The budget bounds all S3/STS/IoT work of a cycle: each request gets the per-request timeout or
what is left of the budget, whichever is less; once it is spent, calls fail at once with
``timeout``. A host that did not answer (refused, DNS, timeout) is not dialled again in the same
cycle, so an unreachable endpoint costs one timeout, not one per artifact.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime

from agent.aws.credentials import Credentials, ensure_fresh, from_environment, from_profile
from agent.aws.endpoints import Endpoint, resolve_region, service_endpoint
from agent.aws.http import HttpClient, Response
from agent.aws.signing import sign
from agent.config.models import CredentialsSource, S3Config
from agent.errors import AwsError, ErrorKind
from agent.greengrass.root import GreengrassRoot
from agent.log import get_logger

log = get_logger(__name__)


class Budget:
    """A wall-clock allowance for a cycle's AWS work, measured on the monotonic clock."""

    def __init__(
        self, seconds: float, request_timeout: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.request_timeout = request_timeout
        self._clock = clock
        self._deadline = clock() + seconds

    def timeout(self, what: str) -> float:
        """The timeout for the next request, or AwsError(timeout) when the budget is spent."""
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise self.spent(what, "not attempted")
        return min(self.request_timeout, remaining)

    def spent(self, what: str, verb: str) -> AwsError:
        """The error of a call the budget did not leave time for."""
        return AwsError(
            ErrorKind.TIMEOUT,
            f"{what}: {verb}, the cycle budget of {self.seconds:g}s (s3.cycleBudgetSeconds) "
            "was spent",
        )


class AwsSession:
    """Signs and sends requests with one set of credentials; shared by the threads of a cycle."""

    def __init__(
        self,
        *,
        http: HttpClient,
        credentials: Credentials,
        region: str,
        env: Mapping[str, str],
        budget: Budget,
    ) -> None:
        self.http = http
        self.credentials = credentials
        self.region = region
        self.env = env
        self.budget = budget
        self._lock = threading.Lock()
        self._dead: dict[str, AwsError] = {}

    def endpoint(self, service: str) -> Endpoint:
        """The endpoint of ``service`` for this session's region (env overrides honoured)."""
        return service_endpoint(service, self.region, self.env)

    def send(
        self,
        *,
        service: str,
        method: str,
        endpoint: Endpoint,
        path: str,
        what: str,
        region: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
    ) -> Response:
        """Sign with ``region`` (default: the session's) and send; any HTTP status is returned."""
        host = endpoint.host_header
        with self._lock:
            dead = self._dead.get(host)
        if dead is not None:
            raise AwsError(dead.kind, f"{what}: skipped, {host} did not answer earlier ({dead})")
        timeout = self.budget.timeout(what)
        all_headers = list(headers or [])
        if body is not None and not any(k.lower() == "content-length" for k, _ in all_headers):
            # awscrt sends a body only with a length (HTTP/1.1 without chunked encoding).
            all_headers.append(("Content-Length", str(len(body))))
        signed = sign(
            method=method,
            endpoint=endpoint,
            path=path,
            headers=all_headers,
            body=body,
            credentials=self.credentials,
            region=region or self.region,
            service=service,
        )
        try:
            return self.http.request(method, endpoint, path, signed, body, timeout=timeout)
        except AwsError as exc:
            if exc.kind is ErrorKind.TIMEOUT and timeout < self.budget.request_timeout:
                # Cut short by the budget, not by the host: say so, and keep the host usable.
                raise self.budget.spent(what, "stopped") from None
            if exc.kind in (ErrorKind.UNREACHABLE, ErrorKind.TIMEOUT):
                with self._lock:
                    self._dead.setdefault(host, exc)
            log.info("aws_call_failed", call=what, kind=exc.kind.value, error=exc.message)
            raise


def resolve_credentials(
    *,
    config: S3Config,
    greengrass: GreengrassRoot,
    env: Mapping[str, str],
    thing_name: str,
    http: HttpClient,
    budget: Budget,
    now: datetime,
) -> Credentials:
    """Credentials from ``s3.credentials.source``; AwsError says why there are none."""
    from agent.aws.container import from_container

    source = config.credentials.source
    alias = greengrass.role_alias
    found: Credentials | None
    if source is CredentialsSource.X509:
        from agent.aws.iot_credentials import from_x509

        found = from_x509(
            greengrass=greengrass,
            config=config.credentials,
            thing_name=thing_name,
            http=http,
            timeout=budget.timeout("AWS IoT credentials provider"),
        )
    elif source is CredentialsSource.TES:
        found = from_container(
            env, http, timeout=budget.timeout("container credentials"), role_alias=alias
        )
        if found is None:
            raise AwsError(
                ErrorKind.NOT_CONFIGURED,
                "s3.credentials.source is tes but AWS_CONTAINER_CREDENTIALS_FULL_URI is not set",
                remediation="add a dependency on aws.greengrass.TokenExchangeService to the "
                "agent's recipe so the nucleus gives it the container credentials variables",
            )
    else:
        found = (
            from_environment(env)
            or from_profile(env, timeout=budget.timeout("profile credentials"))
            or from_container(
                env, http, timeout=budget.timeout("container credentials"), role_alias=alias
            )
        )
        if found is None:
            raise AwsError(
                ErrorKind.NOT_CONFIGURED,
                "no credentials: none in the environment, no profile, and no token exchange "
                "service endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI)",
                remediation="add a dependency on aws.greengrass.TokenExchangeService to the "
                "agent's recipe, or set s3.credentials.source: x509 on a device, or export "
                "AWS credentials when debugging on a laptop",
            )
    return ensure_fresh(found, now)


def open_session(
    *,
    config: S3Config,
    greengrass: GreengrassRoot,
    env: Mapping[str, str],
    thing_name: str,
    now: datetime,
    http: HttpClient | None = None,
    budget: Budget | None = None,
) -> AwsSession:
    """Resolve region and credentials and return a session; AwsError when credentials fail."""
    http = http or HttpClient()
    budget = budget or Budget(config.cycle_budget_seconds, config.request_timeout_seconds)
    region, _origin = resolve_region(greengrass.region, env)
    credentials = resolve_credentials(
        config=config,
        greengrass=greengrass,
        env=env,
        thing_name=thing_name,
        http=http,
        budget=budget,
        now=now,
    )
    return AwsSession(http=http, credentials=credentials, region=region, env=env, budget=budget)
