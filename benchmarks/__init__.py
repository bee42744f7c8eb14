"""chat-tui benchmarks: ``python -m benchmarks [--size smoke|full]``.

See ``benchmarks/run.py`` for what is measured and ``benchmarks/NOTES.md`` for findings.
"""
