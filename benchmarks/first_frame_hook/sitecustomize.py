"""Records CPU time to the first frame, for ``python -m benchmarks.first_frame_cpu``.

Loaded by Python at start-up when this directory is first on ``PYTHONPATH`` and
``FIRST_FRAME_OUT`` names a file. When ``textual.app`` is imported it wraps ``App.__init__``,
``App._process_messages`` and ``App._display``, and at the first frame written outside a
``batch_update`` (for a screen with a ``#body``: with the body shown) it appends one JSON
line to that file: ``time.process_time()`` in seconds (user + system, every thread) at
``textual.app`` imported (``imported``), ``App.__init__`` entered (``init``), left
(``init_done``), ``App._process_messages`` entered (``run``) and the frame (``frame``),
plus ``modules`` (``len(sys.modules)``).

``FIRST_FRAME_STDERR=1`` also writes the line ``first frame`` to standard error then, to
cut the output of ``-X importtime`` (``PYTHONPROFILEIMPORTTIME=1``) at the frame.
``FIRST_FRAME_PROFILE=<file>`` also runs pyinstrument from here to the frame and writes
its text report there (a profile, not a timing: it slows the start down).
"""

import os
import sys
import time

_OUT = os.environ.get("FIRST_FRAME_OUT")


def _install() -> None:
    import importlib.abc
    import importlib.machinery

    marks: dict[str, float] = {}
    profiler = None
    if os.environ.get("FIRST_FRAME_PROFILE"):
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()

    def patch(module) -> None:
        marks["imported"] = time.process_time()
        app_cls = module.App
        init, process, display = app_cls.__init__, app_cls._process_messages, app_cls._display

        def __init__(self, *args, **kwargs):
            marks.setdefault("init", time.process_time())
            init(self, *args, **kwargs)
            marks.setdefault("init_done", time.process_time())

        async def _process_messages(self, *args, **kwargs):
            marks.setdefault("run", time.process_time())
            return await process(self, *args, **kwargs)

        def _display(self, screen, renderable):
            display(self, screen, renderable)
            if "frame" in marks or renderable is None or self._batch_count:
                return
            body = screen.query("#body")
            if body and not body.first().display:
                return
            marks["frame"] = time.process_time()
            if os.environ.get("FIRST_FRAME_STDERR"):
                os.write(2, b"first frame\n")
            if profiler is not None:
                profiler.stop()
                with open(os.environ["FIRST_FRAME_PROFILE"], "w", encoding="utf-8") as f:
                    f.write(profiler.output_text(unicode=True, show_all=False))
            import json

            with open(_OUT, "a", encoding="utf-8") as f:
                f.write(json.dumps({**marks, "modules": len(sys.modules)}) + "\n")

        app_cls.__init__ = __init__
        app_cls._process_messages = _process_messages
        app_cls._display = _display

    class Finder(importlib.abc.MetaPathFinder):
        """Wraps the loader of ``textual.app`` so :func:`patch` runs right after it."""

        def find_spec(self, name, path, target=None):
            if name != "textual.app":
                return None
            sys.meta_path.remove(self)
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            exec_module = spec.loader.exec_module

            def exec_and_patch(module):
                exec_module(module)
                patch(module)

            spec.loader.exec_module = exec_and_patch
            return spec

    sys.meta_path.insert(0, Finder())


if _OUT:
    _install()
