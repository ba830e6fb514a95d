"""``python -m goose_api``: the ``goose-api`` command."""

import sys

from goose_api.cli import main

sys.exit(main())
