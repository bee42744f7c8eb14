"""chat-tui: an offline-first terminal chat client and its reference server.

Layers (a module imports only from layers left of it)::

    config -> store -> api -> sync -> ui        server (separate)
"""

__version__ = "0.1.0"
