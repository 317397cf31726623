"""Benchmarks of the event path. `python -m bench.event_path` (or `make bench`) runs them.

Nothing here is imported by the services; the package only drives them.
"""
