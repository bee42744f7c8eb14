"""The models the server's assistant offers (``GET /v1/models``, docs/api.md).

:class:`ModelCatalog` asks each provider for its ``GET {base_url}/models`` (with its key
and timeout) and keeps each answer :attr:`AssistantSettings.models_ttl` seconds (a failure
:data:`FAILURE_TTL` seconds), so clients listing models do not reach the providers on
every request; concurrent requests share one upstream call per provider. A provider that
fails is reported in ``problems`` and the others are still listed. The echo responder
offers the one model ``echo`` of provider ``built-in``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from chat_tui.server.settings import ProviderSettings
from chat_tui.wire.models import ModelInfo, ModelList, ProviderProblem

#: Seconds a failed model list is remembered before the provider is asked again.
FAILURE_TTL = 5.0
#: The model id and provider name of the echo responder.
ECHO_MODEL, ECHO_PROVIDER = "echo", "built-in"


class ProviderError(RuntimeError):
    """A provider cannot be used; the message is readable and never contains a key."""


@dataclass
class _Entry:
    expires: float
    models: list[str] | None
    problem: str | None


def _describe(exc: BaseException) -> str:
    import openai

    if isinstance(exc, ProviderError):
        return str(exc)
    if isinstance(exc, openai.APIStatusError):
        return f"GET /models answered HTTP {exc.status_code}"
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return "GET /models timed out"
    if isinstance(exc, openai.APIConnectionError):
        return "the provider could not be reached"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def client_for(provider: ProviderSettings):
    """An ``openai.AsyncOpenAI`` client of ``provider`` (its key, timeout, no retries).

    Raises:
        ProviderError: the provider's key is missing (``key_problem``).
    """
    from openai import AsyncOpenAI

    if provider.key_problem:
        raise ProviderError(provider.key_problem)
    return AsyncOpenAI(base_url=provider.base_url, api_key=provider.api_key or "not-needed",
                       timeout=provider.timeout, max_retries=0)


class ModelCatalog:
    """The model lists of ``providers`` (see module doc). Event-loop only.

    ``default_model``: the configured model of the replies (None: the first one the first
    provider lists); ``ttl``: seconds a list is kept; ``echo``: the server answers with the
    echo responder (no providers are asked); ``clock``: monotonic seconds.
    """

    def __init__(self, providers: list[ProviderSettings], default_model: str | None,
                 ttl: float, echo: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.providers = providers
        self.default_model = default_model
        self.ttl = ttl
        self.echo = echo
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def provider_models(self, provider: ProviderSettings) -> list[str]:
        """The model ids ``provider`` lists, from the cache while fresh.

        Raises:
            ProviderError: the provider failed (now, or within :data:`FAILURE_TTL`).
        """
        lock = self._locks.setdefault(provider.name, asyncio.Lock())
        async with lock:
            entry = self._entries.get(provider.name)
            if entry is None or entry.expires <= self.clock():
                entry = await self._fetch(provider)
                self._entries[provider.name] = entry
        if entry.models is None:
            raise ProviderError(entry.problem or "the provider failed")
        return list(entry.models)

    async def _fetch(self, provider: ProviderSettings) -> _Entry:
        try:
            client = client_for(provider)
            async with asyncio.timeout(provider.timeout):
                ids = [item.id async for item in client.models.list()]
            return _Entry(self.clock() + self.ttl, ids, None)
        except Exception as exc:  # noqa: BLE001 - reported to the caller, never raised
            return _Entry(self.clock() + FAILURE_TTL, None, _describe(exc))

    async def default(self) -> str:
        """The model of the replies: the configured one, else the first one the first
        provider lists.

        Raises:
            ProviderError: none is configured and the provider lists none (or fails).
        """
        if self.default_model:
            return self.default_model
        if not self.providers:
            raise ProviderError("no provider is configured")
        first = self.providers[0]
        models = await self.provider_models(first)
        if not models:
            raise ProviderError(f"provider {first.name} lists no models")
        return models[0]

    async def provider_of(self, model: str) -> ProviderSettings:
        """The provider that serves ``model``: the only one, or the first whose list holds
        it (lists are read as :meth:`provider_models` does; a failing provider is
        skipped), else the first provider (a configured model need not be listed).

        Raises:
            ProviderError: no provider is configured.
        """
        if not self.providers:
            raise ProviderError("no provider is configured")
        if len(self.providers) == 1:
            return self.providers[0]
        for provider in self.providers:
            try:
                if model in await self.provider_models(provider):
                    return provider
            except ProviderError:
                continue
        return self.providers[0]

    async def listing(self) -> ModelList:
        """The answer of ``GET /v1/models``: every provider's models, in provider order,
        the default flagged; failed providers in ``problems``."""
        if self.echo:
            return ModelList(models=(ModelInfo(ECHO_MODEL, ECHO_PROVIDER, True),),
                             default=ECHO_MODEL)
        models: list[ModelInfo] = []
        problems: list[ProviderProblem] = []
        try:
            default: str | None = await self.default()
        except ProviderError:
            default = None
        for index, provider in enumerate(self.providers):
            try:
                ids = await self.provider_models(provider)
            except ProviderError as exc:
                problems.append(ProviderProblem(provider.name, str(exc)))
                continue
            for model in ids:
                models.append(ModelInfo(model, provider.name, index == 0 and model == default))
        return ModelList(models=tuple(models), default=default, problems=tuple(problems))
