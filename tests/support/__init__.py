"""Shared test support: server processes, fault proxy, CLI and wire helpers, fixtures.

Plain modules, no tests; test modules and ``tools/`` import them as ``tests.support.*``.
"""
