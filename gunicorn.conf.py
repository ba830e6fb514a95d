"""gunicorn settings for ``gunicorn app:app -c gunicorn.conf.py`` (Procfile, ``make run``).

They live in ``goose_api/ops/gunicorn_config.py`` so that an installed goose-api has them too:
``goose-api serve`` runs ``gunicorn 'goose_api:create_app()' -c python:goose_api.ops.gunicorn_config``.
"""

from goose_api.ops.gunicorn_config import *  # noqa: F401,F403  (settings and server hooks)
