"""The assistant member of conversations created with ``"assistant": true``.

After each user message the server writes one assistant reply:

- strictly one at a time and in message order per conversation: one asyncio queue and one
  worker task per conversation with pending work (the task ends when its queue is empty);
- each reply sees the history up to the message it answers (``AssistantReplies.history``);
- a regenerated reply (``POST /v1/messages/{mid}/regenerate``, its row made by
  ``Regenerations.regenerate``) is written the same way into that row, in the same
  per-conversation order, with the settings the conversation had when it was asked for;
  the last write of any reply written in full also makes the earlier replies to its
  question tombstones, in the same transaction (``AssistantReplies.finish_reply``): one
  answer per question stays, no reader ever sees two, and a failed or stopped attempt
  replaces nothing;
- each reply is written with the model and system prompt its conversation had when the
  message it answers was sent (``AssistantReplies.asked_with``; none: the server's default
  model and :data:`SYSTEM_PROMPT`), and records that model (``Message.model``);
- the reply is one message with a deterministic id (``uuid5`` of the user message id), created
  empty with ``streaming: true``; its body grows as the responder streams, flushed to the
  database at most every :data:`FLUSH_SECONDS` (about 10 updates a second), each flush a new
  ``version`` that clients see through ``/v1/sync``; the last write sets ``streaming: false``;
- any upstream failure (HTTP error, unreachable, timeout, empty answer) ends the reply with
  ``error: true`` and a readable text; the user's message is never touched;
- :meth:`AssistantService.stop_reply` (``POST /v1/messages/{mid}/stop``) ends a streaming
  reply at once: the upstream request is cancelled (the provider stops generating), the
  text written so far is kept as it is, with ``stopped: true``, ``streaming: false`` and
  ``error: false``; later replies see that text.

Ownership (several server processes on one PostgreSQL database): the replies of one
conversation are written by exactly one process, the holder of the conversation's lease
(``assistant_lease``: owner, expiry;
:class:`~chat_tui.server.data.assistant_leases.AssistantLeases`).
The database is the queue: a process that learns of a new user message or a regenerated
reply (its own route, a start-up scan, an expired lease) takes the lease when it is free
or expired, closes as errors the replies left ``streaming`` there (no live process is
writing them) except regenerated replies (a user's regenerate is kept work: not begun, or
begun by a process that stopped, it is written again from the start), writes those, then
answers the
conversation's unanswered messages one by one, and gives the lease up in the same
transaction that finds nothing left to answer. While it works it renews its leases
every third of :attr:`AssistantSettings.lease` seconds (PostgreSQL); every reply write
checks the lease inside its transaction (:class:`LeaseLost`), so a process whose lease
expired and was taken over stops writing. A stopping process ends its leases at once; a
crashed one's run out after ``lease`` seconds, and the next sweep of a live process
(every third of ``lease``) takes its conversations over. A stop request for a reply
another process writes reaches that process as a PostgreSQL notice. SQLite has one
server process: a starting server there deletes every lease (their holder no longer runs).

Responders are async generators of text chunks, given the history and a :class:`ReplyPlan`:
:func:`make_echo_responder` (built-in demo, optionally followed by a note saying how to
configure a model) and :class:`OpenAIResponder` (OpenAI-compatible providers, streaming: the
plan's model from the first provider that lists it, else the first provider).
:attr:`AssistantService.catalog` lists the models the server offers (``GET /v1/models``,
:mod:`chat_tui.server.assistant_models`).
On start-up, replies left ``streaming`` by a stopped server are closed as errors (except
regenerated ones, written again), user messages that never got a reply are answered, in
the conversations no live process holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from chat_tui.server.assistant_models import ECHO_MODEL, ModelCatalog, ProviderError, client_for
from chat_tui.server.data import Write
from chat_tui.server.data.assistant_jobs import (  # noqa: F401 (reply_id_for re-exported)
    REPLY_NAMESPACE,
    AssistantJobs,
    LeaseLost,
    reply_id_for,
)
from chat_tui.server.db import is_sqlite
from chat_tui.server.notify import Notifier
from chat_tui.server.settings import AssistantSettings, ProviderSettings

log = logging.getLogger("chat_tui.server.assistant")

#: Seconds between two flushes of a growing reply (about 10 updates a second).
FLUSH_SECONDS = 0.1

#: How many words of the user's message the echo responder repeats.
ECHO_MAX_WORDS = 200

#: The line earlier versions appended to a reply a member stopped (replies are now marked
#: ``stopped`` instead); removed from such replies before a model sees them.
STOP_NOTE = "⏹ Stopped before the end."

#: The note that ends a reply whose writer stopped or crashed before it finished.
INTERRUPTED_NOTE = (
    "The assistant was interrupted (the server stopped) before finishing this reply."
)
#: Seconds between two looks at a reply another process was asked to stop.
STOP_POLL_SECONDS = 0.05

SYSTEM_PROMPT = (
    "You are the assistant member of a chat-tui conversation. User messages are prefixed "
    "with their author's username. Answer helpfully and concisely in plain text."
)

History = list[dict]


@dataclass(frozen=True)
class ReplyPlan:
    """How one reply is written: ``model``, the model id (None: not known yet, the
    responder asks for the server's default and fails with the reason when there is
    none); ``system_prompt``, the instructions (None: :data:`SYSTEM_PROMPT`)."""

    model: str | None = None
    system_prompt: str | None = None


#: ``responder(history, plan)``: the reply's text, chunk by chunk.
Responder = Callable[[History, ReplyPlan], AsyncIterator[str]]


def make_echo_responder(delay: float, note: str | None = None) -> Responder:
    """The built-in demo responder: says what it is, then echoes the message word by word,
    then adds ``note`` (how to configure a model) after a blank line when given.

    ``delay``: seconds between streamed words, so clients can watch the reply grow.
    """

    async def echo_responder(history: History,
                             plan: ReplyPlan | None = None) -> AsyncIterator[str]:
        words = history[-1]["body"].split() if history else []
        shown = words[:ECHO_MAX_WORDS]
        yield (
            "I am the built-in demo assistant (echo responder): this server has no language "
            "model configured, so I repeat what you wrote."
        )
        if shown:
            yield " You wrote:"
        for word in shown:
            await asyncio.sleep(delay)
            yield " " + word
        if len(words) > len(shown):
            yield " …"
        if note:
            yield "\n\n" + note

    return echo_responder


class OpenAIResponder:
    """Streams a chat completion from OpenAI-compatible providers (the ``openai`` package).

    ``catalog``: the providers (endpoint, key and timeout, seconds for the HTTP exchange)
    and the default model. A reply uses the plan's model (else
    :meth:`ModelCatalog.default`) from the provider that lists it
    (:meth:`ModelCatalog.provider_of`) and the plan's system prompt (else
    :data:`SYSTEM_PROMPT`). No retries: a failure (``ProviderError`` for a missing key or
    no model, or the package's errors) is reported in the reply at once.
    """

    def __init__(self, catalog: ModelCatalog) -> None:
        self.catalog = catalog
        # Made now, not in a reply: the first import of ``openai`` takes seconds on a busy
        # machine, which must not count against a reply's timeout.
        self._clients: dict[str, Any] = {
            p.name: client_for(p) for p in catalog.providers if not p.key_problem}

    def _client(self, provider: ProviderSettings) -> Any:
        client = self._clients.get(provider.name)
        if client is None:
            client = self._clients[provider.name] = client_for(provider)
        return client

    async def __call__(self, history: History,
                       plan: ReplyPlan | None = None) -> AsyncIterator[str]:
        plan = plan or ReplyPlan()
        model = plan.model or await self.catalog.default()
        client = self._client(await self.catalog.provider_of(model))
        messages: list[dict[str, str]] = [
            {"role": "system", "content": plan.system_prompt or SYSTEM_PROMPT}]
        for item in history:
            if item["assistant"]:
                body = without_stop_note(item["body"])
                if body:
                    messages.append({"role": "assistant", "content": body})
            else:
                messages.append({"role": "user", "content": f"{item['author']}: {item['body']}"})
        stream = await client.chat.completions.create(
            model=model, messages=messages, stream=True
        )
        async for chunk in stream:
            if chunk.choices:
                piece = chunk.choices[0].delta.content
                if piece:
                    yield piece


def without_stop_note(body: str) -> str:
    """``body`` of an assistant reply without the :data:`STOP_NOTE` a stop appended."""
    if body == STOP_NOTE:
        return ""
    return body.removesuffix("\n\n" + STOP_NOTE)


def describe_failure(exc: BaseException, timeout: float) -> str:
    """A readable sentence for an upstream failure (never includes secrets)."""
    try:
        import openai
    except ImportError:  # pragma: no cover - openai is a dependency
        openai = None  # type: ignore[assignment]
    if isinstance(exc, ProviderError):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"the language model did not finish within {timeout:g} seconds"
    if openai is not None:
        if isinstance(exc, openai.APIStatusError):
            return f"the language model service answered HTTP {exc.status_code}"
        if isinstance(exc, openai.APITimeoutError):
            return "the language model service timed out"
        if isinstance(exc, openai.APIConnectionError):
            return "the language model service could not be reached"
        if isinstance(exc, openai.APIError):
            return f"the language model service failed ({exc.__class__.__name__})"
    return f"{exc.__class__.__name__}: {str(exc)[:200]}"


class AssistantService:
    """Per-conversation reply workers (see module doc). Event-loop only.

    Args:
        jobs: the assistant's data access; notifier: wakes long-polls after each write;
        settings: the responder to use.

    ``catalog``: the models the server offers (``GET /v1/models``); ``timeout``: seconds a
    reply may take (the provider's own timeout for ``openai``).

    Raises ValueError for an unknown responder kind, KeyError when ``openai`` has neither
    providers nor ``OPENAI_API_KEY``.
    """

    def __init__(self, jobs: AssistantJobs, notifier: Notifier,
                 settings: AssistantSettings) -> None:
        self.jobs = jobs
        self.notifier = notifier
        self.settings = settings
        self.providers = self._providers()
        self.timeout = self.providers[0].timeout if self.providers else settings.timeout
        self.catalog = ModelCatalog(self.providers, settings.model, settings.models_ttl,
                                    echo=settings.kind == "echo")
        self.responder: Responder = self._make_responder()
        #: This process's id in the conversations' leases (32 hex digits).
        self.owner = uuid.uuid4().hex
        self.lease_seconds = settings.lease
        #: Conversations told of new work since their worker last looked.
        self._pending: set[str] = set()
        self._workers: dict[str, asyncio.Task[None]] = {}
        #: reply id -> (stop requested, reply finished), while the reply is being written.
        self._streaming: dict[str, tuple[asyncio.Event, asyncio.Event]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False
        #: Sends a stop request to the other processes (set by the app on PostgreSQL).
        self.ask_others_to_stop: Callable[[str], None] | None = None

    def reconfigure(self, settings: AssistantSettings) -> None:
        """Answer with ``settings`` from the next reply on (the client's settings screen
        changed the providers of the embedded server): new providers, model catalog and
        responder; a reply being written finishes with the responder it started with.
        Event-loop only.

        Raises ValueError / KeyError as the constructor does; the old settings stay then.
        """
        old = (self.settings, self.providers, self.timeout, self.catalog, self.responder)
        try:
            self.settings = settings
            self.providers = self._providers()
            self.timeout = self.providers[0].timeout if self.providers else settings.timeout
            self.catalog = ModelCatalog(self.providers, settings.model, settings.models_ttl,
                                        echo=settings.kind == "echo")
            self.responder = self._make_responder()
        except Exception:
            (self.settings, self.providers, self.timeout, self.catalog,
             self.responder) = old
            raise

    def _providers(self) -> list[ProviderSettings]:
        if self.settings.kind != "openai":
            return []
        if self.settings.providers:
            return list(self.settings.providers)
        return [ProviderSettings("default", self.settings.base_url,
                                 os.environ["OPENAI_API_KEY"], None, self.settings.timeout)]

    def _make_responder(self) -> Responder:
        if self.settings.kind == "openai":
            return OpenAIResponder(self.catalog)
        if self.settings.kind == "echo":
            return make_echo_responder(self.settings.echo_delay, self.settings.echo_note)
        raise ValueError(f"unknown assistant responder {self.settings.kind!r}")

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    def _publish(self, result: Write | None) -> None:
        if result is not None and result.affected:
            self.notifier.notify(result.affected)

    async def start(self) -> None:
        """Take over the conversations with work that no live process holds (replies left
        streaming are closed as errors, unanswered messages answered). On PostgreSQL,
        then sweep every third of the lease time (:meth:`_sweep`); on SQLite, first
        delete every lease (one server process: nobody else can hold one, so there is
        nothing to renew or take over later, and an idle server runs no query)."""
        single = is_sqlite(self.jobs.db)
        if single:
            await self._run(self.jobs.leases.clear)
        for cid in await self._run(self.jobs.work.conversations_with_work):
            self.enqueue(cid)
        if not single:
            self._sweeper = asyncio.create_task(self._sweep(), name="assistant-leases")

    async def stop(self) -> None:
        """Cancel the workers and end this process's leases (a reply in progress is closed
        as an error by the process that takes its conversation over, or at next start)."""
        self._stopping = True
        tasks = list(self._workers.values())
        if self._sweeper is not None:
            tasks.append(self._sweeper)
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        try:
            await self._run(self.jobs.leases.expire, self.owner)
        except Exception:
            log.exception("could not end the assistant's leases")

    async def _sweep(self) -> None:
        """Every third of the lease time: renew this process's leases while it works,
        and take over the expired ones (one indexed query when there are none)."""
        while not self._stopping:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                if self._workers:
                    await self._run(self.jobs.leases.renew, self.owner, self.lease_seconds)
                for cid in await self._run(self.jobs.leases.expired):
                    self.enqueue(cid)
            except Exception:
                log.exception("assistant lease sweep failed")

    async def stop_reply(self, reply_id: str) -> bool:
        """Stop the reply ``reply_id`` if it is being written now, and return once its
        final text (what was written, then :data:`STOP_NOTE`) is committed. Returns False
        when it is not being written (finished already, or not started).

        A reply another process writes (PostgreSQL): that process is asked through a
        notice, and this waits until the reply stops streaming (at most the lease time,
        after which its writer is presumed gone)."""
        entry = self._streaming.get(reply_id)
        if entry is None:
            if self.ask_others_to_stop is None:
                return False
            await self._run(self.ask_others_to_stop, reply_id)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.lease_seconds
            while await self._run(self.jobs.replies.streaming, reply_id):
                if loop.time() > deadline:
                    return False
                await asyncio.sleep(STOP_POLL_SECONDS)
            return True
        requested, finished = entry
        requested.set()
        await finished.wait()
        return True

    def stop_local(self, reply_ids) -> None:
        """Ask for a stop of the replies ``reply_ids`` this process writes, if any (a stop
        request from another process); returns at once."""
        for reply_id in reply_ids:
            entry = self._streaming.get(reply_id)
            if entry is not None:
                entry[0].set()

    def enqueue(self, cid: str, mid: str | None = None, reply_id: str | None = None) -> None:
        """Note new work in conversation ``cid`` (after the commit of message ``mid``, or
        of the regenerated reply ``reply_id``; the database tells which messages are owed
        a reply and which regenerated replies wait) and start its worker when none runs:
        it answers there if this process gets the lease."""
        if self._stopping:
            return
        self._pending.add(cid)
        if cid not in self._workers:
            self._workers[cid] = asyncio.create_task(self._worker(cid), name=f"assistant-{cid}")

    async def _worker(self, cid: str) -> None:
        try:
            while cid in self._pending and not self._stopping:
                self._pending.discard(cid)
                if await self._run(self.jobs.leases.acquire, cid, self.owner, self.lease_seconds):
                    await self._drain(cid)
        finally:
            self._workers.pop(cid, None)

    async def _drain(self, cid: str) -> None:
        """Holding the lease of ``cid``: close orphaned streaming replies as errors
        (regenerated ones are written again instead), then write the regenerated replies
        that wait and answer the unanswered messages, a waiting regeneration first each
        time (one may come while a reply is written); give the lease up when nothing is
        left."""
        try:
            waiting = await self._run(self.jobs.work.waiting_regenerations, cid)
            for result in await self._run(self.jobs.replies.interrupt_streaming, cid,
                                          INTERRUPTED_NOTE, self.owner,
                                          {reply_id for reply_id, _ in waiting}):
                self._publish(result)
            while not self._stopping:
                waiting = await self._run(self.jobs.work.waiting_regenerations, cid)
                if waiting:
                    reply_id, question = waiting[0]
                    await self._reply(cid, question, reply_id)
                    continue
                mid = await self._run(self.jobs.work.next_unanswered, cid)
                if mid is None:
                    self._pending.discard(cid)
                    if await self._run(self.jobs.leases.release, cid, self.owner):
                        return
                    continue
                await self._reply(cid, mid)
        except LeaseLost:
            log.warning("assistant lease of %s was taken over by another process", cid)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease ends now, so a sweep (this process's or another's) tries again.
            log.exception("assistant replies in %s failed", cid)
            with contextlib.suppress(Exception):
                await self._run(self.jobs.leases.expire_one, cid, self.owner)

    async def _model_for(self, asked: str | None) -> str | None:
        """The model a reply asked with ``asked`` (None: the default) is written by: the
        echo responder's own, ``asked``, else the server's default (None when it cannot
        be known: the responder then fails with the reason)."""
        if self.settings.kind == "echo":
            return ECHO_MODEL
        if asked:
            return asked
        try:
            return await self.catalog.default()
        except ProviderError:
            return None

    async def _reply(self, cid: str, mid: str, regenerated: str | None = None) -> None:
        history = await self._run(self.jobs.replies.history, cid, mid)
        if history is None:  # the message was deleted before its turn
            if regenerated is not None:
                self._publish(await self._run(
                    self.jobs.replies.update_reply, regenerated,
                    "⚠ The question of this reply was deleted.", streaming=False, error=True))
            return
        asked_model, system_prompt = await self._run(self.jobs.replies.asked_with,
                                                     regenerated or mid)
        plan = ReplyPlan(await self._model_for(asked_model), system_prompt)
        reply_id = regenerated or reply_id_for(mid)
        requested, finished = asyncio.Event(), asyncio.Event()
        self._streaming[reply_id] = (requested, finished)
        try:
            await self._write_reply(cid, mid, reply_id, history, requested, plan,
                                    regenerated is not None)
        finally:
            self._streaming.pop(reply_id, None)
            finished.set()

    async def _write_reply(self, cid: str, mid: str, reply_id: str, history: History,
                           requested: asyncio.Event, plan: ReplyPlan,
                           regenerated: bool = False) -> None:
        if regenerated:
            started = await self._run(self.jobs.replies.begin_reply, reply_id, plan.model,
                                      self.owner)
        else:
            started = await self._run(self.jobs.replies.start_reply, cid, reply_id, mid, plan.model,
                                      self.owner)
        if started is None:
            return  # already answered
        self._publish(started)
        text = ""
        flushed = ""
        write_lock = asyncio.Lock()
        lost = asyncio.Event()  # the lease was taken over: stop at once, write nothing

        async def write(body: str, streaming: bool, error: bool = False,
                        stopped: bool = False) -> None:
            async with write_lock:
                if lost.is_set():
                    raise LeaseLost(cid)
                try:
                    result = await self._run(
                        self.jobs.replies.update_reply, reply_id, body, streaming=streaming,
                        error=error, stopped=stopped, owner=self.owner,
                    )
                except LeaseLost:
                    lost.set()
                    raise
                self._publish(result)

        done = asyncio.Event()

        async def flusher() -> None:
            # Ends only between writes (``done`` is checked after each wait), never by
            # cancellation in the middle of one: a cancelled ``await`` does not stop the
            # worker thread's ``update_reply(streaming=True)``, which could then commit
            # after the final write and leave the reply streaming forever.
            nonlocal flushed
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), FLUSH_SECONDS)
                if done.is_set():
                    return
                if text != flushed:
                    snapshot = text
                    try:
                        await write(snapshot, True)
                    except LeaseLost:
                        return
                    flushed = snapshot

        async def stop_flusher() -> None:
            done.set()
            await flush_task  # lets a streaming write in progress commit first

        async def generate() -> None:
            nonlocal text
            async for piece in self.responder(history, plan):
                text += piece

        flush_task = asyncio.create_task(flusher())
        generator = asyncio.create_task(generate())
        stop_wait = asyncio.create_task(requested.wait())
        lost_wait = asyncio.create_task(lost.wait())
        stopped = False
        try:
            try:
                async with asyncio.timeout(self.timeout):
                    await asyncio.wait({generator, stop_wait, lost_wait},
                                       return_when=asyncio.FIRST_COMPLETED)
            finally:
                # Still generating: stopped by a member, timed out, the lease was lost, or
                # the server stops. Cancelling closes the upstream stream, so the provider
                # stops generating.
                stop_wait.cancel()
                lost_wait.cancel()
                stopped = not generator.done()
                if stopped:
                    generator.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await generator
            if lost.is_set():
                raise LeaseLost(cid)
            if not stopped:
                generator.result()  # raises the upstream failure
                if not text.strip():
                    raise RuntimeError("the language model returned an empty reply")
        except (asyncio.CancelledError, LeaseLost):
            flush_task.cancel()
            raise
        except Exception as exc:  # any upstream failure ends as an error reply
            await stop_flusher()
            reason = describe_failure(exc, self.timeout)
            log.warning("assistant reply %s failed: %s", reply_id, reason)
            note = f"⚠ The assistant could not reply: {reason}."
            await write(f"{text}\n\n{note}" if text.strip() else note, False, True)
            return
        await stop_flusher()
        # The last write of this reply: streaming ends here (stopped: what was written,
        # replacing nothing; written in full: the earlier replies to its question become
        # tombstones in the same transaction).
        if stopped:
            await write(text, False, stopped=True)
            return
        async with write_lock:
            if lost.is_set():
                raise LeaseLost(cid)
            self._publish(await self._run(self.jobs.replies.finish_reply, reply_id, text,
                                          self.owner))
