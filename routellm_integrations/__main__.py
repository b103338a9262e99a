"""``python -m routellm_integrations ...``: the ``routellm`` command."""

from .cli import main

raise SystemExit(main())
