"""X.509 plumbing of the certificate audit: bounded file reads, PEM parsing into small facts,
the ROCA fingerprint, Amazon trust roots, permission rules and the per-cycle inventory.

The checks in :mod:`agent.checks.certificates` only turn these facts into results.
"""
