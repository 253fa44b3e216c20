"""``python -m sparsecore`` is the ``sparsecore`` command."""

from sparsecore.cli import main

raise SystemExit(main())
