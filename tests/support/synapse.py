"""A real Synapse homeserver for tests: :class:`Synapse`, :class:`SynapseUnavailable`.

The homeserver is ``matrix-synapse`` from PyPI (the ``test`` extra), run as
``python -m synapse.app.homeserver`` in its own process group with a configuration this
module writes into a temp directory: server name ``localhost``, SQLite, one client listener
on 127.0.0.1 at a free port (no federation listener, federation to every domain refused,
no trusted key servers, no URL previews, no stats report), ``/.well-known/matrix/client``
served (naming ``public_baseurl``), no caching of sync answers (a repeated identical
``/sync`` request must see what happened in between), every rate limit raised far above
what a test does, and a shared registration secret so :meth:`Synapse.register` creates
users through the admin API ``/_synapse/admin/v1/register`` (HMAC-SHA1 of nonce, username,
password and admin flag). One application service is registered (``appservice.yaml``, no
URL: the homeserver pushes nothing to it) so a test can send events with a chosen
``origin_server_ts`` (``PUT .../send/...?ts=``, allowed to application services only): its
token is :attr:`Synapse.as_token`, its user :attr:`Synapse.as_user`. The log goes to
``homeserver.log`` in that directory, never to the test's output.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.servers import find_free_port

#: Rate limits far above what any test does (Synapse's are per second and burst).
_UNLIMITED = {"per_second": 100000, "burst_count": 1000000}

SERVER_NAME = "localhost"
#: Localpart of the application service's own user (``@chat-tui-bridge:localhost``).
AS_LOCALPART = "chat-tui-bridge"


class SynapseUnavailable(RuntimeError):
    """``matrix-synapse`` is not installed in this environment."""


def _log_config(path: Path, log_file: Path) -> None:
    path.write_text(f"""version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: {log_file}
root:
  level: WARNING
  handlers: [file]
disable_existing_loggers: false
""")


def _appservice(path: Path, as_token: str) -> None:
    path.write_text(f"""id: chat-tui-tests
url: null
as_token: "{as_token}"
hs_token: "{secrets.token_hex(16)}"
sender_localpart: {AS_LOCALPART}
rate_limited: false
namespaces:
  users: []
  rooms: []
  aliases: []
""")


def _config(base: Path, port: int, secret: str) -> str:
    limits = (f"{{per_second: {_UNLIMITED['per_second']}, "
              f"burst_count: {_UNLIMITED['burst_count']}}}")
    return f"""server_name: "{SERVER_NAME}"
public_baseurl: "http://127.0.0.1:{port}/"
serve_client_wellknown: true
pid_file: {base}/homeserver.pid
listeners:
  - port: {port}
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: {base}/homeserver.db
log_config: {base}/log.yaml
media_store_path: {base}/media
signing_key_path: {base}/signing.key
registration_shared_secret: "{secret}"
macaroon_secret_key: "{secrets.token_hex(16)}"
form_secret: "{secrets.token_hex(16)}"
report_stats: false
enable_registration: false
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
url_preview_enabled: false
use_presence: false
caches:
  sync_response_cache_duration: 0
enable_metrics: false
rc_message: {limits}
rc_registration: {limits}
rc_registration_token_validity: {limits}
rc_login:
  address: {limits}
  account: {limits}
  failed_attempts: {limits}
rc_admin_redaction: {limits}
rc_joins:
  local: {limits}
  remote: {limits}
rc_joins_per_room: {limits}
rc_invites:
  per_room: {limits}
  per_user: {limits}
  per_issuer: {limits}
rc_3pid_validation: {limits}
rc_presence:
  per_user: {limits}
rc_delayed_event_mgmt: {limits}
rc_room_creation: {limits}
rc_reports: {limits}
app_service_config_files: [{base}/appservice.yaml]
"""


class Synapse:
    """A running Synapse on ``url`` (``http://127.0.0.1:<port>``), data in ``base``.

    :meth:`register` creates a user, :meth:`stop` / :meth:`start` stop and start the same
    homeserver (same port, same database), :meth:`close` stops it for good.
    ``extra_config`` is YAML appended to the configuration (top-level keys this module does
    not set, for example ``bcrypt_rounds: 4`` for a benchmark that registers many users).
    ``as_token`` and ``as_user`` are the application service's token and user id (see the
    module doc).

    Raises:
        SynapseUnavailable: ``matrix-synapse`` is not importable.
        RuntimeError: the homeserver did not answer ``/_matrix/client/versions`` within
            ``start_timeout`` seconds (the message ends with the log's last lines).
    """

    def __init__(self, base: Path, *, start_timeout: float = 90.0, extra_config: str = ""):
        if importlib.util.find_spec("synapse") is None:
            raise SynapseUnavailable(
                "matrix-synapse is not installed (pip install -e '.[test]')")
        self.base = base
        self.base.mkdir(parents=True, exist_ok=True)
        self.port = find_free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.secret = secrets.token_hex(16)
        self.as_token = secrets.token_hex(16)
        self.as_user = f"@{AS_LOCALPART}:{SERVER_NAME}"
        self.config = base / "homeserver.yaml"
        self.log = base / "homeserver.log"
        self.start_timeout = start_timeout
        self.config.write_text(_config(base, self.port, self.secret) + extra_config)
        _log_config(base / "log.yaml", self.log)
        _appservice(base / "appservice.yaml", self.as_token)
        subprocess.run([sys.executable, "-m", "synapse.app.homeserver", "-c",
                        str(self.config), "--generate-keys"],
                       check=True, capture_output=True, cwd=base)
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        """Start the homeserver process and wait until it answers."""
        if self.process is not None and self.process.poll() is None:
            return
        self.process = subprocess.Popen(
            [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config)],
            cwd=self.base, stdout=subprocess.DEVNULL,
            stderr=open(self.base / "stderr.log", "ab"),  # noqa: SIM115 - owned by Popen
            start_new_session=True)
        try:
            self._wait_answering()
        except BaseException:  # a timeout, or Ctrl-C/SIGTERM while waiting: no orphan
            self.stop()
            raise

    def _wait_answering(self) -> None:
        """Return once ``/_matrix/client/versions`` answers 200.

        Raises:
            RuntimeError: the process exited, or ``start_timeout`` seconds passed.
        """
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"synapse exited with {self.process.returncode}: "
                                   f"{self._tail()}")
            try:
                if httpx.get(f"{self.url}/_matrix/client/versions", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"synapse did not answer within {self.start_timeout} s: {self._tail()}")

    def _tail(self) -> str:
        text = ""
        for name in ("stderr.log", "homeserver.log"):
            path = self.base / name
            if path.exists():
                text += path.read_text(errors="replace")[-2000:]
        return text

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 15 s); the data stays."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(15)

    close = stop

    def leave_cut_off_create(self, alias: str, room_id: str, creator: str) -> None:
        """Write what a homeserver killed in the middle of a ``createRoom`` leaves: the
        room's row and its alias ``alias`` (``#localpart:server``, created by the user id
        ``creator``) pointing at ``room_id``, and none of the room's events. Synapse takes
        a create's alias in its own transaction before it writes the room's first event,
        so a crash between the two leaves exactly these rows; the homeserver reads them as
        it reads its own (no cache holds an alias it has not been asked for)."""
        with sqlite3.connect(self.base / "homeserver.db", timeout=30) as db:
            db.execute("INSERT INTO rooms (room_id, is_public, creator, room_version,"
                       " has_auth_chain_index) VALUES (?, 0, ?, '12', 1)",
                       (room_id, creator))
            db.execute("INSERT INTO room_aliases (room_alias, room_id, creator)"
                       " VALUES (?, ?, ?)", (alias, room_id, creator))
            db.execute("INSERT INTO room_alias_servers (room_alias, server) VALUES (?, ?)",
                       (alias, alias.split(":", 1)[1]))
        db.close()

    def register(self, username: str, password: str, *, admin: bool = False) -> str:
        """Create the user ``username`` (localpart) with ``password`` through the
        shared-secret admin API; returns its user id (``@username:localhost``).

        Raises:
            httpx.HTTPStatusError: Synapse refused (for example, the name is taken).
        """
        endpoint = f"{self.url}/_synapse/admin/v1/register"
        nonce = httpx.get(endpoint, timeout=10).raise_for_status().json()["nonce"]
        mac = hmac.new(self.secret.encode(), digestmod=hashlib.sha1)
        mac.update(b"\x00".join([nonce.encode(), username.encode(), password.encode(),
                                 b"admin" if admin else b"notadmin"]))
        answer = httpx.post(endpoint, timeout=30, json={
            "nonce": nonce, "username": username, "password": password, "admin": admin,
            "mac": mac.hexdigest()})
        answer.raise_for_status()
        return answer.json()["user_id"]
