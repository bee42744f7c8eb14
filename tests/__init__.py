"""The test suite of chat-tui; ``tests.support`` holds its shared helpers (importable by
``tools/``)."""
