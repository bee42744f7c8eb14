"""The fixtures of the whole test suite (loaded by ``tests/conftest.py`` as a plugin).

House rule: tests talk to a real ``chat-tui-server`` process over loopback with a real
database; nothing here mocks HTTP.

``isolated_user_dirs`` (autouse)
    Points ``XDG_DATA_HOME``, ``XDG_CONFIG_HOME``, ``XDG_CACHE_HOME`` and ``XDG_STATE_HOME``
    at fresh subdirectories of a per-test temp dir (platformdirs honours them on Linux) and
    sets ``PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring`` so no real keyring is
    touched. Yields the dict of variables set.

``server``
    A running :class:`~tests.support.servers.ServerProcess` with users ``alice``
    (``alice-pw``) and ``bob`` (``bob-pw``) and nothing else in its database. By default it
    is the worker's :class:`~tests.support.servers.SharedServer` (one process per pytest
    worker, the database reset before each test); the test may stop, kill and restart it.
    A test marked ``own_server`` gets a process of its own, started in the test's
    environment (so its default log file lands in the test's ``XDG_STATE_HOME``). With
    ``db_backend`` ``"postgres"`` it is a process of its own on a fresh PostgreSQL database.

``db_backend``
    ``"sqlite"``, or ``"postgres"`` for the second run of a test marked ``also_postgres``
    (see :func:`pytest_generate_tests`) or where a module overrides this fixture.

``server_factory``
    ``server_factory.start(*, rate_limit=0, assistant="echo", extra_args=(), users=None,
    db=None) -> ServerProcess``: a new server process with a fresh database, for tests that
    need special flags, a rate limit or a process to themselves;
    ``server_factory.start_with_model(model_url, model, **options)`` one whose assistant
    is an OpenAI-compatible endpoint (a model server). Every server it started is stopped
    at teardown.

``server_api``
    ``server_api(name) -> ApiClient``: an API client logged in as ``name`` directly on
    ``server`` (device ``checker``), to check what the server really holds; closed after.

``pg_cluster`` (session), ``pg_url``
    A throwaway PostgreSQL cluster (:class:`~tests.support.postgres.Cluster`) and a fresh
    database in it as a ``postgresql://`` URL (dropped after). When the PostgreSQL binaries
    are missing the test is skipped, except when the environment variable ``CI`` is set:
    then it fails, so a CI run can never pass without the PostgreSQL tests.

``synapse`` (session)
    A real Synapse homeserver (:class:`~tests.support.synapse.Synapse`: SQLite, loopback
    only, rate limits raised), started once per pytest worker and stopped at the end. Users
    are created with ``synapse.register(name, password)``. When ``matrix-synapse`` is not
    installed the test is skipped, except when ``CI`` is set: then it fails.

``unused_port``
    A TCP port that was free on 127.0.0.1 a moment ago, for fixtures that run their own
    listener (a fault proxy, a fake upstream, ...).

``working_keyring``
    A keyring that works, for this test's process and every process it starts: keyring's
    own ``PYTHON_KEYRING_BACKEND`` names ``keyrings.alt.file.PlaintextKeyring`` (its file
    under the test's ``XDG_DATA_HOME``). Yields the backend; the refusing keyring is set
    again afterwards.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.support.accounts import PASSWORDS
from tests.support.postgres import Cluster, PostgresUnavailable
from tests.support.servers import ServerFactory, ServerProcess, SharedServer, find_free_port
from tests.support.synapse import Synapse, SynapseUnavailable


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test marked ``also_postgres`` twice: ``[sqlite]`` and ``[postgres]``."""
    if metafunc.definition.get_closest_marker("also_postgres") is None:
        return
    if "db_backend" not in metafunc.fixturenames:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: also_postgres needs `server`")
    metafunc.parametrize("db_backend", [
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres",
                     marks=[pytest.mark.postgres, pytest.mark.xdist_group("postgres")]),
    ], indirect=True)


@pytest.fixture(autouse=True)
def isolated_user_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """Per-test XDG dirs and a keyring that refuses everything (see module doc)."""
    base = tmp_path_factory.mktemp("userdirs")
    values = {
        "XDG_DATA_HOME": str(base / "data"),
        "XDG_CONFIG_HOME": str(base / "config"),
        "XDG_CACHE_HOME": str(base / "cache"),
        "XDG_STATE_HOME": str(base / "state"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    for key, value in values.items():
        if key.startswith("XDG_"):
            Path(value).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(key, value)
    yield values


#: The working keyring of the tests (keyrings.alt, in the test extra): a file-backed keyring
#: that keyring itself loads by name, as a user's keyringrc.cfg or environment would.
WORKING_KEYRING = "keyrings.alt.file.PlaintextKeyring"


@pytest.fixture
def working_keyring(monkeypatch: pytest.MonkeyPatch,
                    isolated_user_dirs: dict[str, str]) -> Iterator[object]:
    """A working keyring for this test (see module doc)."""
    import keyring
    import keyring.core
    from keyring.backends import fail

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", WORKING_KEYRING)
    keyring.core.init_backend()  # reads the variable, as a new process does
    backend = keyring.get_keyring()
    assert type(backend).__module__ + "." + type(backend).__name__ == WORKING_KEYRING
    try:
        yield backend
    finally:
        keyring.set_keyring(fail.Keyring())


@pytest.fixture
def unused_port() -> int:
    """A free loopback TCP port (:func:`~tests.support.servers.find_free_port`)."""
    return find_free_port()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """A :class:`ServerFactory`; every server it started is stopped at teardown."""
    factory = ServerFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedServer]:
    """The worker's :class:`SharedServer` (users alice and bob), stopped at the end."""
    shared = SharedServer(tmp_path_factory.mktemp("shared-server"), PASSWORDS)
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> str:
    """``"sqlite"`` or ``"postgres"`` (see module doc)."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def server(request: pytest.FixtureRequest, db_backend: str,
           server_factory: ServerFactory) -> ServerProcess:
    """A running server with users alice/alice-pw and bob/bob-pw (see module doc)."""
    if db_backend == "postgres":
        return server_factory.start(users=PASSWORDS, db=request.getfixturevalue("pg_url"))
    if request.node.get_closest_marker("own_server") is not None:
        return server_factory.start(users=PASSWORDS)
    return request.getfixturevalue("shared_server").checkout()


@pytest.fixture
async def server_api(server: ServerProcess) -> AsyncIterator[Callable[[str], object]]:
    """``server_api(name) -> ApiClient`` logged in directly on ``server`` (module doc)."""
    from chat_tui.api import ApiClient

    clients: list[ApiClient] = []

    def make(name: str) -> ApiClient:
        data = server.login(name, PASSWORDS[name], device="checker")
        client = ApiClient(server.url, data["access_token"])
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            await client.aclose()


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


T = TypeVar("T")


def _started_or_skipped(start: Callable[[], T], missing: type[Exception], tests: str,
                        remedy: str) -> T:
    """``start()``; when it raises ``missing`` (a component is not installed) the test is
    skipped, or fails when CI is set: CI must run ``tests`` (``remedy`` says how)."""
    try:
        return start()
    except missing as exc:
        if _in_ci():
            pytest.fail(f"{exc}; CI is set, so {tests} must run ({remedy})", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A running throwaway PostgreSQL cluster (see module doc: skip, or fail under CI)."""
    cluster = _started_or_skipped(Cluster, PostgresUnavailable, "the PostgreSQL tests",
                                  ".ci/run installs PostgreSQL")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """A fresh, empty database in the cluster, as a ``postgresql://`` URL."""
    url = pg_cluster.create_database()
    try:
        yield url
    finally:
        pg_cluster.drop_database(url)


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    """The worker's running Synapse (see module doc: skip, or fail under CI)."""
    homeserver = _started_or_skipped(lambda: Synapse(tmp_path_factory.mktemp("synapse")),
                                     SynapseUnavailable, "the Matrix tests",
                                     "matrix-synapse is in the test extra")
    try:
        yield homeserver
    finally:
        homeserver.close()
