"""Developer tools run from the repository root as modules: ``python -m tools.soak``,
``python -m tools.make_screenshots``. They use the test support package ``tests.support``."""
