"""What a probe of one bucket or one artifact learnt: which S3 calls were made, how each ended.

Facts only (an :class:`Outcome` per call), recorded by the check as it calls S3 through
:mod:`agent.aws`; :mod:`agent.s3.probe_verdicts` turns them into verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.errors import AwsError
from agent.s3.iam import ACTIONS, resource_for


@dataclass(frozen=True)
class Outcome:
    """One S3 call of a probe."""

    operation: str
    action: str
    """The IAM action the call needs."""
    resource: str
    """The ARN a policy must grant the action on."""
    error: AwsError | None = None


@dataclass
class Probe:
    """Everything learnt about one bucket or artifact."""

    target: str
    bucket: str
    partition: str
    """The ARN partition of the device's region (``aws``, ``aws-cn``, ``aws-us-gov``)."""
    outcomes: list[Outcome] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, operation: str, pattern: str, error: AwsError | None) -> None:
        """Record the outcome of ``operation`` on this probe's bucket (objects ``pattern``)."""
        action = ACTIONS[operation]
        resource = resource_for(action, self.bucket, self.partition, pattern)
        self.outcomes.append(Outcome(operation, action, resource, error))

    @property
    def errors(self) -> list[Outcome]:
        """The calls that failed."""
        return [o for o in self.outcomes if o.error is not None]
