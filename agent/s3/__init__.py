"""The rules of the ``s3.*`` checks: what the token exchange role's S3 access proves.

Pure: the check in :mod:`agent.checks.s3` asks AWS (through :mod:`agent.aws`) and hands the
facts here; these modules turn them into results and never call AWS themselves.

- ``probes``: what one bucket or artifact probe learnt (one :class:`~agent.s3.probes.Outcome`
  per S3 call);
- ``iam``: the IAM action behind each S3 call and the statement that grants them;
- ``verdicts``, ``probe_verdicts``: errors and probes as results, with remediations;
- ``refresh``: when the last audit may be reused instead of probing AWS again.
"""
