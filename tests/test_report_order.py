"""HealthReport.build orders results worst first, then by id and target, and counts them, for
any mix of results (it sorts per status bucket, so this pins it to the plain definition)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agent.report import CheckResult, HealthReport, Status, summarize, worst

results = st.lists(
    st.builds(
        CheckResult,
        id=st.sampled_from(["certificate.validity", "certificate.readable", "s3.bucket"]),
        status=st.sampled_from(list(Status)),
        target=st.text(max_size=4),
        message=st.text(max_size=3),
    ),
    max_size=60,
)


def _build(found: list[CheckResult]) -> HealthReport:
    return HealthReport.build(
        found, agent_version="0", thing_name="t", generated_at="g", sequence=1, duration_ms=0.04
    )


@given(results)
def test_order_status_and_summary_follow_their_definitions(found: list[CheckResult]) -> None:
    report = _build(found)
    assert report.checks == sorted(found, key=lambda r: (-r.status.severity, r.id, r.target))
    assert report.status is worst(r.status for r in found)
    assert report.summary == summarize(found)
    assert list(report.summary) == [s.value for s in Status]


def test_no_result_is_unknown_and_ties_keep_their_order() -> None:
    assert _build([]).status is Status.UNKNOWN
    a = CheckResult("s3.bucket", Status.OK, "b", "first")
    b = CheckResult("s3.bucket", Status.OK, "b", "second")
    assert [r.message for r in _build([a, b]).checks] == ["first", "second"]
