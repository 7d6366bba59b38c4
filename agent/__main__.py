"""``python -m agent`` is the same as the ``gg-health-agent`` console script."""

from agent.cli import main

raise SystemExit(main())
