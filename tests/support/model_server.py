"""A small OpenAI-compatible model server for tests: a real HTTP process on loopback.

Run as ``python -m tests.support.model_server [--port N] [--delay S] [--model NAME ...]
[--api-key KEY]``; it prints ``model-server listening on http://127.0.0.1:PORT`` once it
accepts connections. :class:`ModelServer` starts and stops it from a test; its ``url`` is
the endpoint root a client uses as ``base_url`` (``http://127.0.0.1:PORT/v1``).

Routes, shaped like the OpenAI API:

- ``GET /v1/models``: ``{"object": "list", "data": [{"id", "object": "model", "created",
  "owned_by"}]}`` for the configured model names.
- ``POST /v1/chat/completions``: with ``"stream": true`` a ``text/event-stream`` of
  ``chat.completion.chunk`` objects (a role delta, one content delta per word, a
  ``finish_reason: "stop"`` chunk, then ``data: [DONE]``), one word every ``delay``
  seconds; without it one ``chat.completion`` object. The reply is ``"saw N: <last user
  message>"`` where N counts the user messages of the request.

With ``--api-key KEY`` both routes answer 401 unless ``Authorization: Bearer KEY``.

Failure modes, chosen by the model name, by the last user message, or for every request
by the control route:

- model ``fail-500`` / message containing ``FAIL500`` / ``fail: "500"``: HTTP 500 with an
  OpenAI-shaped error body;
- model ``hang`` / message containing ``SLOW`` / ``fail: "hang"``: two chunks, then silence
  for ten minutes (the client's timeout ends it);
- message containing ``BREAK`` / ``fail: "break"``: two chunks, then the connection drops.

Control routes (for the test, not part of the OpenAI API): ``POST /_control`` with any of
``{"delay": seconds, "fail": "500" | "hang" | "break" | null, "models": [names],
"reply": text | null}`` changes the behaviour from the next request on (``reply``: answer
this text instead of ``"saw N: ..."``, streamed word by word); ``GET /_control/requests`` returns every chat
request body received, in order; ``GET /_control/counts`` returns
``{"models": n, "completions": n, "streams_done": n, "streams_cut": n}``: the requests of
each route, and the streams that ended with ``[DONE]`` or were cut short (the client
closed the connection, the server dropped it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

#: Seconds :class:`ModelServer` waits for the process to print its listening line.
START_TIMEOUT = 30.0
#: Seconds a hanging reply stays silent.
HANG_SECONDS = 600.0
_LISTENING = re.compile(r"^model-server listening on (http://127\.0\.0\.1:(\d+))\s*$")
_ROOT = Path(__file__).resolve().parents[2]


def build_app(models: list[str], delay: float, api_key: str | None) -> Any:
    """The Starlette application of the model server (see the module doc)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response, StreamingResponse
    from starlette.routing import Route

    state: dict[str, Any] = {"models": list(models), "delay": delay, "fail": None,
                             "reply": None}
    requests: list[dict] = []
    counts = {"models": 0, "completions": 0, "streams_done": 0, "streams_cut": 0}

    def unauthorized(request: Request) -> Response | None:
        if api_key is None or request.headers.get("authorization") == f"Bearer {api_key}":
            return None
        return JSONResponse(
            {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                       "code": "invalid_api_key"}},
            status_code=401,
        )

    async def list_models(request: Request) -> Response:
        counts["models"] += 1
        refused = unauthorized(request)
        if refused is not None:
            return refused
        data = [{"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "tests"}
                for name in state["models"]]
        return JSONResponse({"object": "list", "data": data})

    def chunk(model: str, delta: dict, finish: str | None = None) -> str:
        body = {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return "data: " + json.dumps(body) + "\n\n"

    async def completions(request: Request) -> Response:
        counts["completions"] += 1
        refused = unauthorized(request)
        if refused is not None:
            return refused
        payload = await request.json()
        requests.append(payload)
        model = str(payload.get("model", ""))
        users = [m for m in payload.get("messages", []) if m.get("role") == "user"]
        last = str(users[-1]["content"]) if users else ""
        fail = state["fail"]
        if model == "fail-500" or "FAIL500" in last or fail == "500":
            return JSONResponse(
                {"error": {"message": "upstream exploded", "type": "server_error"}},
                status_code=500,
            )
        hang = model == "hang" or "SLOW" in last or fail == "hang"
        drop = "BREAK" in last or fail == "break"
        words = (state["reply"] or f"saw {len(users)}: {last}").split(" ")
        pace = float(state["delay"])
        if not payload.get("stream"):
            return JSONResponse({
                "id": "chatcmpl-test", "object": "chat.completion", "created": 1_700_000_000,
                "model": model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": " ".join(words)}}],
            })

        async def events():
            finished = False
            try:
                yield chunk(model, {"role": "assistant"})
                for i, word in enumerate(words):
                    if i == 2 and drop:
                        raise RuntimeError("connection dropped on purpose")
                    if i == 2 and hang:
                        await asyncio.sleep(HANG_SECONDS)
                    yield chunk(model, {"content": word if i == 0 else " " + word})
                    await asyncio.sleep(pace)
                yield chunk(model, {}, "stop")
                yield "data: [DONE]\n\n"
                finished = True
            finally:
                counts["streams_done" if finished else "streams_cut"] += 1

        return StreamingResponse(events(), media_type="text/event-stream")

    async def control(request: Request) -> Response:
        changes = await request.json()
        for key in ("delay", "fail", "models", "reply"):
            if key in changes:
                state[key] = changes[key]
        return JSONResponse({"delay": state["delay"], "fail": state["fail"],
                             "models": state["models"]})

    async def control_requests(_: Request) -> Response:
        return JSONResponse(requests)

    async def control_counts(_: Request) -> Response:
        return JSONResponse(counts)

    return Starlette(routes=[
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/_control", control, methods=["POST"]),
        Route("/_control/requests", control_requests, methods=["GET"]),
        Route("/_control/counts", control_counts, methods=["GET"]),
    ])


def main(argv: list[str] | None = None) -> int:
    """Run the model server in the foreground until SIGTERM / Ctrl+C; returns 0."""
    import uvicorn

    parser = argparse.ArgumentParser(prog="model_server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.03, help="seconds between words")
    parser.add_argument("--model", action="append", default=None, help="a model name")
    parser.add_argument("--api-key", default=None, help="require this bearer key")
    args = parser.parse_args(argv)
    app = build_app(args.model or ["fake-model"], args.delay, args.api_key)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    port = sock.getsockname()[1]

    class Server(uvicorn.Server):
        async def startup(self, sockets=None):  # type: ignore[override]
            await super().startup(sockets=sockets)
            if self.started:
                print(f"model-server listening on http://127.0.0.1:{port}", flush=True)

    config = uvicorn.Config(app, log_level="critical", lifespan="off",
                            timeout_graceful_shutdown=1)
    Server(config).run(sockets=[sock])
    return 0


class ModelServer:
    """The model server as a subprocess on 127.0.0.1 (see the module doc).

    ``models``: the names ``GET /v1/models`` lists; ``delay``: seconds between streamed
    words; ``api_key``: the bearer key both routes require (None: none); ``port``: 0 picks a
    free one, fixed after the first start so :meth:`start` after :meth:`stop` comes back on
    the same address. ``url``: ``http://127.0.0.1:PORT/v1`` once started.
    """

    def __init__(self, models: list[str] | None = None, delay: float = 0.03,
                 api_key: str | None = None, port: int = 0) -> None:
        self.models = list(models or ["fake-model"])
        self.delay = delay
        self.api_key = api_key
        self.port = port
        self.root = ""
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> ModelServer:
        """Start the process and wait for its listening line; returns ``self``.

        Raises RuntimeError when it exits or stays silent for :data:`START_TIMEOUT` s.
        """
        cmd = [sys.executable, "-m", "tests.support.model_server", "--port", str(self.port),
               "--delay", str(self.delay)]
        for name in self.models:
            cmd += ["--model", name]
        if self.api_key is not None:
            cmd += ["--api-key", self.api_key]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(cmd, cwd=_ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while time.monotonic() < deadline:
                if not selector.select(timeout=0.2):
                    if self.proc.poll() is not None:
                        break
                    continue
                line = self.proc.stdout.readline()  # type: ignore[union-attr]
                if not line:
                    break
                match = _LISTENING.match(line)
                if match:
                    self.root = match.group(1)
                    self.port = int(match.group(2))
                    self.url = f"{self.root}/v1"
                    return self
        finally:
            selector.close()
        self.stop()
        raise RuntimeError("the model server did not start")

    def stop(self) -> None:
        """Terminate the process (kill after 5 s). Idempotent."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def control(self, **changes: Any) -> dict:
        """``POST /_control`` with ``changes`` (``delay``, ``fail``, ``models``); returns the
        new state."""
        return httpx.post(f"{self.root}/_control", json=changes, timeout=10).json()

    @property
    def requests(self) -> list[dict]:
        """Every chat completion request body received so far, in order."""
        return httpx.get(f"{self.root}/_control/requests", timeout=10).json()

    @property
    def counts(self) -> dict[str, int]:
        """``{"models", "completions", "streams_done", "streams_cut"}``: requests per route,
        streams finished and streams cut short."""
        return httpx.get(f"{self.root}/_control/counts", timeout=10).json()

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    raise SystemExit(main())
