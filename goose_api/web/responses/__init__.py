"""The OpenAI Responses API (``/v1/responses``) over goose sessions and runs.

A response is one turn (or the part of a turn up to a tool call waiting for
approval) of a goose session: ``routes.py`` speaks HTTP, ``request.py`` reads
the body, ``service.py`` starts, waits for, cancels and settles responses over
the turn and run services, ``output.py`` turns a run's event log into output
items and streaming events, ``store.py`` keeps them.
"""
