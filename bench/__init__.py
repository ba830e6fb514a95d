"""Benchmarks of goose-api's own cost against baselines measured in the same run.

Run one with ``python -m bench.<name>`` from the project root, or all with
``python bench/run_all.py`` (``make bench``). See bench/README.md.
"""
