"""Allow ``python -m supervisor``."""

from supervisor.cli import main

raise SystemExit(main())
