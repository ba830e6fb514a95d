"""``python -m goose_api``: the ``goose-api`` command."""

import sys

from goose_api.cli.main import main

sys.exit(main())
