"""WSGI entry point: ``gunicorn app:app -c gunicorn.conf.py``; ``python app.py`` runs a dev server."""

from goose_api import create_app

app = create_app()

if __name__ == "__main__":
    settings = app.extensions["goose_api"].settings
    app.run(host=settings.host, port=settings.port, threaded=True)
