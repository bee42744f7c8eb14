"""Users, logins and device tokens (docs/api.md, ``POST /v1/login``, ``POST /v1/logout``)."""

from __future__ import annotations

import uuid

from chat_tui.server import security
from chat_tui.server.data.base import Principal, Repository, normalize_username
from chat_tui.server.db import utcnow, write_transaction
from chat_tui.server.errors import unauthorized
from chat_tui.server.models import Device, User
from chat_tui.wire.limits import ASSISTANT_USERNAME, MAX_DEVICE_NAME_CHARS
from chat_tui.wire.models import Login


class Users(Repository):
    """Accounts, their devices and the bearer tokens that name them."""

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

    def set_password(self, username: str, password: str) -> str:
        """Set (or reset) the password of a user, creating the user when missing.

        Returns the user id. Existing device tokens stay valid. Raises ValueError on an
        invalid or reserved username.
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

    def login(self, username: str, password: str, device_name: str) -> Login:
        """docs/api.md ``POST /v1/login``: a new device with its own token.

        Raises ApiError 401 for a wrong or malformed username, a wrong password, a user
        without a password, or the assistant.
        """
        try:
            name = normalize_username(username)
        except ValueError:
            name = None
        self.db.connect(reuse_if_open=True)
        user = User.get_or_none(User.username == name) if name else None
        ok = security.verify_password(password, user.password_hash if user else None)
        if not ok or user is None or user.is_system:
            raise unauthorized("wrong username or password")
        token = security.new_token()
        device_id = str(uuid.uuid4())
        with write_transaction(self.db):
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
        """docs/api.md ``POST /v1/logout``: revoke the calling device's token."""
        with write_transaction(self.db):
            Device.update(revoked_at=utcnow()).where(
                (Device.id == principal.device_id) & Device.revoked_at.is_null()
            ).execute()

    def assistant_id(self) -> str:
        """Id of the ``assistant`` system user (created by the migrations)."""
        self.db.connect(reuse_if_open=True)
        return User.get(User.username == ASSISTANT_USERNAME).id
