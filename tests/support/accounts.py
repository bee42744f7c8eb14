"""The test users and logging them in as a client would: :data:`PASSWORDS`,
:func:`login_account`.

Every server the fixtures start has the users ``alice`` (password ``alice-pw``) and ``bob``
(``bob-pw``).
"""

from __future__ import annotations

from chat_tui.config import Account, save_account, store_token

#: name -> password of the users every test server has.
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw"}


def login_account(server, name: str, url: str | None = None) -> Account:
    """Log ``name`` in over HTTP on ``server`` (a running ``ServerProcess``), save the account
    for ``url`` (default: the server's own URL; a fault proxy's URL puts the proxy in
    between) with its token (a 0600 file: the test keyring refuses) and return the
    :class:`~chat_tui.config.Account`.

    Raises ``httpx.HTTPStatusError`` when the login is refused.
    """
    data = server.login(name, PASSWORDS[name])
    account = Account(server_url=url or server.url, username=data["username"],
                      user_id=data["user_id"], device_id=data["device_id"])
    store_token(account, data["access_token"])
    save_account(account)
    return account
