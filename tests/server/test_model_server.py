"""The test model server (tests/support/model_server.py) speaks the OpenAI API as the
assistant tests need: the model list, streamed chunks ending in ``[DONE]``, its failure
modes and its control route. Driven with the ``openai`` package, as the server drives it."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.support.model_server import ModelServer


@pytest.fixture(scope="module")
def model_server():
    with ModelServer(["alpha", "beta"], delay=0.01, api_key="sk-test") as server:
        yield server


def client(server: ModelServer, key: str = "sk-test", timeout: float = 5) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=key, timeout=timeout, max_retries=0)


def test_lists_its_models_and_refuses_a_wrong_key(model_server):
    assert [m.id for m in client(model_server).models.list()] == ["alpha", "beta"]
    with pytest.raises(openai.AuthenticationError):
        client(model_server, key="wrong").models.list()


def test_streams_server_sent_events_ending_in_done(model_server):
    with httpx.stream("POST", f"{model_server.url}/chat/completions",
                      headers={"Authorization": "Bearer sk-test"},
                      json={"model": "alpha", "stream": True,
                            "messages": [{"role": "user", "content": "hi there"}]}) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in resp.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "alpha"
               for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "saw 1: hi there"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    stream = client(model_server).chat.completions.create(
        model="beta", stream=True, messages=[{"role": "user", "content": "a"},
                                             {"role": "user", "content": "b"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "saw 2: b"


def test_failure_modes_by_model_name_and_control_route(model_server):
    messages = [{"role": "user", "content": "x y z w"}]
    with pytest.raises(openai.InternalServerError):
        client(model_server).chat.completions.create(model="fail-500", messages=messages,
                                                     stream=True)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        stream = client(model_server, timeout=1).chat.completions.create(
            model="hang", messages=messages, stream=True)
        for _ in stream:
            pass
    assert time.monotonic() - started < 10
    assert model_server.control(fail="500")["fail"] == "500"
    try:
        with pytest.raises(openai.InternalServerError):
            client(model_server).chat.completions.create(model="alpha", messages=messages)
    finally:
        model_server.control(fail=None)
    reply = client(model_server).chat.completions.create(model="alpha", messages=messages)
    assert reply.choices[0].message.content == "saw 1: x y z w"
    assert model_server.requests[-1]["model"] == "alpha"
    assert model_server.counts["completions"] >= 4
