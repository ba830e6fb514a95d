"""Marshmallow schemas: the same declarations validate requests, shape answers and document the API."""
