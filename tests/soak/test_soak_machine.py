"""The soak: a hypothesis state machine drives the real engine (a killable process) against
the real server through the fault proxy; the invariants of :mod:`tests.soak.harness` hold at
every quiet point and at the end.

Short CI profile: ``SOAK_EXAMPLES`` (default 5) worlds x ``SOAK_STEPS`` (default 40) steps.
A failure prints hypothesis's seed (``--hypothesis-seed=N``) and a ``@reproduce_failure``
blob, plus the steps the world took; see docs/reliability.md for how to replay.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from tests.soak.harness import FAULT_KINDS, World

EXAMPLES = int(os.environ.get("SOAK_EXAMPLES", "5"))
STEPS = int(os.environ.get("SOAK_STEPS", "40"))
SHRINK = os.environ.get("SOAK_SHRINK") == "1"


class SoakMachine(RuleBasedStateMachine):
    """One world per example; each rule is one kind of step (docs/reliability.md)."""

    #: ``[cache] key`` of every world (``"file"``: the cache encrypted, sync rule D6).
    CACHE_KEY = "none"

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="soak-"))
        self.world = World(self.tmp, cache_key=self.CACHE_KEY)
        try:
            self.world.start()
        except BaseException:
            self.world.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise

    def _check(self) -> None:
        problems = self.world.check()
        assert not problems, self._explain(problems)

    def _explain(self, problems: dict) -> str:
        steps = "\n".join(self.world.log[-40:])
        details = "\n".join(f"{k}: {v[:5]}" for k, v in problems.items())
        return f"{details}\nlast steps:\n{steps}\nclient stderr:\n{self.world.client.stderr_tail()}"

    @rule(conv=st.integers(0, 7))
    def send(self, conv: int) -> None:
        self.world.send(conv)

    @rule(conv=st.integers(0, 7), n=st.integers(2, 6))
    def send_burst(self, conv: int, n: int) -> None:
        for i in range(n):
            self.world.send(conv + (i % 2))

    @rule(index=st.integers(0, 1000))
    def edit(self, index: int) -> None:
        self.world.edit(index)

    @rule(index=st.integers(0, 1000))
    def delete(self, index: int) -> None:
        self.world.delete(index)

    @precondition(lambda self: len(self.world.conversations) < 5)
    @rule()
    def create_conversation(self) -> None:
        self.world.create_conversation()

    @rule(enabled=st.booleans())
    def work_offline(self, enabled: bool) -> None:
        self.world.set_work_offline(enabled)

    @rule(hard=st.booleans(), down_for=st.floats(0, 0.5))
    def restart_server(self, hard: bool, down_for: float) -> None:
        self.world.restart_server(hard, down_for)

    @rule()
    def stop_server(self) -> None:
        self.world.stop_server()

    @rule(delay=st.floats(0, 0.4))
    def kill_client(self, delay: float) -> None:
        self.world.kill_client(delay)

    @rule()
    def kill_client_mid_send(self) -> None:
        self.world.kill_client_mid_request()

    @rule(kind=st.sampled_from(FAULT_KINDS),
          method=st.sampled_from(("PUT", "PATCH", "DELETE", "GET", None)),
          count=st.integers(1, 4))
    def fault(self, kind: str, method: str | None, count: int) -> None:
        self.world.fault(kind, method, count)

    @rule(conv=st.integers(0, 7))
    def second_device_sends(self, conv: int) -> None:
        self.world.phone_send(conv)

    @rule(conv=st.integers(0, 7), discard=st.booleans())
    def permanent_422(self, conv: int, discard: bool) -> None:
        self.world.send(conv, poison=True, discard_on_fail=discard)

    @rule()
    def quiet_point(self) -> None:
        self._check()

    def teardown(self) -> None:
        try:
            self._check()
            if self.CACHE_KEY != "none":
                from chat_tui.store.cipher import is_plain_sqlite

                assert is_plain_sqlite(self.world.db_path) is False
        finally:
            print(f"soak world (cache key {self.CACHE_KEY}): {self.world.stats}")
            self.world.close()
            shutil.rmtree(self.tmp, ignore_errors=True)


SoakMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if SHRINK else []),
)

#: Zero lost, duplicated, reordered or stuck messages under random faults.
TestSoakMachine = SoakMachine.TestCase
pytestmark = pytest.mark.timeout(900)


class EncryptedSoakMachine(SoakMachine):
    """The same soak with the client's cache encrypted (SQLCipher, key file): its kill -9
    rounds hold as on a plain file (sync rule D6)."""

    CACHE_KEY = "file"


EncryptedSoakMachine.TestCase.settings = settings(
    SoakMachine.TestCase.settings,
    max_examples=int(os.environ.get("SOAK_ENCRYPTED_EXAMPLES", "1")),
)

#: The soak once with encryption on.
TestEncryptedSoakMachine = EncryptedSoakMachine.TestCase
