"""Users, logins and device tokens (docs/api.md, ``POST /v1/login``, ``POST /v1/logout``)."""

from __future__ import annotations

import uuid

from peewee import Database

from chat_tui.server import security
from chat_tui.server.data.base import Names, Principal, Repository, normalize_username
from chat_tui.server.data.throttle import LoginThrottle, account_key, address_key
from chat_tui.server.db import revoke_on_commit, utcnow, write_transaction
from chat_tui.server.errors import ApiError, unauthorized
from chat_tui.server.models import Device, LoginFailure, User
from chat_tui.server.ratelimit import retry_after_header
from chat_tui.server.settings import LoginLimits
from chat_tui.wire.limits import ASSISTANT_USERNAME, MAX_DEVICE_NAME_CHARS
from chat_tui.wire.models import Login


class Users(Repository):
    """Accounts, their devices and the bearer tokens that name them; ``throttle`` counts
    failed logins."""

    def __init__(self, db: Database, names: Names) -> None:
        super().__init__(db, names)
        self.throttle = LoginThrottle(db, names)

    def create(self, username: str, password: str | None) -> str:
        """Create a user (``password`` None: cannot log in); returns its id.

        Raises ValueError on an invalid, reserved or taken username.
        """
        name = normalize_username(username)
        if name == ASSISTANT_USERNAME:
            raise ValueError(f"{name!r} is reserved for the assistant")
        hashed = security.hash_password(password) if password is not None else None
        with write_transaction(self.db):
            if User.select().where(User.username == name).exists():
                raise ValueError(f"user {name!r} already exists")
            user_id = str(uuid.uuid4())
            User.create(id=user_id, username=name, password_hash=hashed, created_at=utcnow())
        return user_id

    def set_password(self, username: str, password: str, *, keep_tokens: bool = False) -> str:
        """Set (or reset) the password of a user, creating the user when missing.

        Returns the user id. A reset revokes every device token of the user (each answers
        401 from then on, in every server process on the database: the commit tells their
        token caches), unless ``keep_tokens``. Raises ValueError on an invalid or reserved username.
        """
        name = normalize_username(username)
        if name == ASSISTANT_USERNAME:
            raise ValueError(f"{name!r} is reserved for the assistant")
        hashed = security.hash_password(password)
        with write_transaction(self.db):
            user = User.get_or_none(User.username == name)
            if user is None:
                user_id = str(uuid.uuid4())
                User.create(id=user_id, username=name, password_hash=hashed, created_at=utcnow())
                return user_id
            User.update(password_hash=hashed).where(User.id == user.id).execute()
            if not keep_tokens:
                Device.update(revoked_at=utcnow()).where(
                    (Device.user == user.id) & Device.revoked_at.is_null()
                ).execute()
                revoke_on_commit(user_ids=[user.id])
            return user.id

    def find(self, username: str) -> str | None:
        """The username as stored when a user of that name exists (the assistant
        included), else None; a malformed name is None too (docs/api.md,
        ``GET /v1/users/{username}``)."""
        try:
            name = normalize_username(username)
        except ValueError:
            return None
        return name if User.select().where(User.username == name).exists() else None

    def login(
        self,
        username: str,
        password: str,
        device_name: str,
        address: str = "",
        limits: LoginLimits | None = None,
    ) -> Login:
        """docs/api.md ``POST /v1/login``: a new device with its own token.

        ``address``: the client's address ("" when unknown: counted per account only);
        ``limits``: the login throttle (None: the defaults). Past a limit it raises ApiError 429
        ``rate_limited`` with ``Retry-After`` before the password is checked; a wrong
        password counts one failure against the name and the address; a success forgets
        the name's failures. A password hash of an older kind or cost (``security.needs_rehash``) is replaced
        by a new argon2id hash of the same password on this successful login.
        Raises ApiError 401 for a wrong or malformed username, a wrong password, a user
        without a password, or the assistant.
        """
        limits = limits or LoginLimits()
        keys = [(account_key(username), limits.per_account)]
        if address:
            keys.append((address_key(address), limits.per_address))
        wait = self.throttle.wait(limits, keys)
        if wait > 0:
            raise ApiError(
                429,
                "rate_limited",
                "too many failed logins; retry after the Retry-After delay",
                {"Retry-After": retry_after_header(wait)},
            )
        try:
            name = normalize_username(username)
        except ValueError:
            name = None
        self.db.connect(reuse_if_open=True)
        user = User.get_or_none(User.username == name) if name else None
        ok = security.verify_password(password, user.password_hash if user else None)
        if not ok or user is None or user.is_system:
            self.throttle.failed(limits, [key for key, _ in keys])
            raise unauthorized("wrong username or password")
        rehashed = (
            security.hash_password(password) if security.needs_rehash(user.password_hash) else None
        )
        token = security.new_token()
        device_id = str(uuid.uuid4())
        with write_transaction(self.db):
            if rehashed is not None:
                User.update(password_hash=rehashed).where(
                    (User.id == user.id) & (User.password_hash == user.password_hash)
                ).execute()
            LoginFailure.delete().where(LoginFailure.key == keys[0][0]).execute()
            Device.create(
                id=device_id,
                user=user.id,
                name=device_name[:MAX_DEVICE_NAME_CHARS],
                token_hash=security.token_hash(token),
                created_at=utcnow(),
            )
        return Login.construct(
            user_id=user.id, access_token=token, device_id=device_id, username=user.username
        )

    def authenticate(self, token: str) -> Principal:
        """The caller of a bearer token; ApiError 401 when unknown or revoked."""
        self.db.connect(reuse_if_open=True)
        row = (
            Device.select(Device.id, Device.user, Device.revoked_at)
            .where(Device.token_hash == security.token_hash(token))
            .first()
        )
        if row is None or row.revoked_at is not None:
            raise unauthorized("missing, unknown or revoked access token")
        user_id = row.user_id
        return Principal(user_id=user_id, username=self.names.of(user_id), device_id=row.id)

    def logout(self, principal: Principal) -> None:
        """docs/api.md ``POST /v1/logout``: revoke the calling device's token (the commit
        tells the token caches of every server process on the database)."""
        with write_transaction(self.db):
            Device.update(revoked_at=utcnow()).where(
                (Device.id == principal.device_id) & Device.revoked_at.is_null()
            ).execute()
            revoke_on_commit(device_ids=[principal.device_id])

    def assistant_id(self) -> str:
        """Id of the ``assistant`` system user (created by the migrations)."""
        self.db.connect(reuse_if_open=True)
        return User.get(User.username == ASSISTANT_USERNAME).id
