"""``python -m routellm_integrations.server --strong ... --weak ...``: ``routellm serve``."""

from .cli import main

raise SystemExit(main())
