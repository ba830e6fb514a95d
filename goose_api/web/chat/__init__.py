"""The OpenAI Chat Completions API (``/v1/chat/completions``, ``/v1/models``) over goose sessions.

For chat front ends that resend the whole history each turn: ``request.py``
reads the body, ``matching.py`` finds the session a conversation continues,
``service.py`` runs the turn and answers it (at once or as chunks),
``routes.py`` speaks HTTP.
"""
