"""``/openapi.json`` states every limit and answer of docs/api.md: body and title limits,
the ``since`` format, the body errors (400, 408, 413, 422) on every route that reads a
body, 401 on every route behind a token, 404 and 422 on every route with an id in its
path, 429 where a limit applies; and 405 answers list the methods of the path."""

from __future__ import annotations

import uuid

import httpx

PUBLIC = {("get", "/v1/health"), ("post", "/v1/login")}


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield method, path, op


def test_rule_openapi_every_answer_declared(server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    for method, path, op in operations(spec):
        declared = set(op["responses"])
        where = f"{method.upper()} {path}"
        if "requestBody" in op:
            assert {"400", "408", "413", "422"} <= declared, where
        if (method, path) not in PUBLIC:
            assert "401" in declared, where
        if "{" in path:
            assert {"404", "422"} <= declared, where
        for status in declared - {"200", "201", "204"}:
            ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/ErrorBody"), (where, status)
    paths = spec["paths"]
    assert "429" in paths["/v1/login"]["post"]["responses"]
    for method, path in (("put", "/v1/conversations/{cid}/messages/{mid}"),
                         ("patch", "/v1/messages/{mid}"), ("delete", "/v1/messages/{mid}"),
                         ("patch", "/v1/conversations/{cid}"),
                         ("post", "/v1/messages/{mid}/regenerate")):
        assert "429" in paths[path][method]["responses"]
    assert "410" in paths["/v1/sync"]["get"]["responses"]


def test_rule_openapi_limits_stated(server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for name in ("MessagePut", "MessagePatch"):
        body = schemas[name]["properties"]["body"]
        assert (body["minLength"], body["maxLength"], body["x-max-utf8-bytes"]) == (1, 65536, 65536)
        assert body["pattern"] == "^[^\\u0000]*$"
    title = schemas["ConversationPut"]["properties"]["title"]
    assert (title["minLength"], title["maxLength"]) == (1, 200)
    assert "\\s" in title["pattern"]
    assert schemas["ConversationPut"]["properties"]["members"]["maxItems"] == 1000
    assert schemas["ConversationPut"]["properties"]["assistant"]["type"] == "boolean"
    assert schemas["LoginRequest"]["properties"]["device_name"]["maxLength"] == 200
    for name in ("ConversationPut", "ConversationPatch"):
        props = schemas[name]["properties"]
        model = next(b for b in props["model"]["anyOf"] if b.get("type") == "string")
        assert (model["minLength"], model["maxLength"]) == (1, 200)
        prompt = next(b for b in props["system_prompt"]["anyOf"] if b.get("type") == "string")
        assert prompt["maxLength"] == 16000 and prompt["pattern"] == "^[^\\u0000]*$"
    params = {p["name"]: p["schema"] for p in spec["paths"]["/v1/sync"]["get"]["parameters"]}
    assert params["since"]["pattern"] == "^[0-9]{1,19}$"  # applies to the string branch
    assert (params["timeout"]["minimum"], params["timeout"]["maximum"]) == (0, 30)
    page = spec["paths"]["/v1/conversations/{cid}/messages"]["get"]["parameters"]
    limit = next(p["schema"] for p in page if p["name"] == "limit")
    assert (limit["minimum"], limit["maximum"]) == (1, 500)


def test_rule_openapi_405_lists_the_path_methods(server):
    r = httpx.request("OPTIONS", f"{server.url}/v1/messages/{uuid.uuid4()}")
    assert r.status_code == 405
    assert r.headers["Allow"] == "PATCH, DELETE"
    assert r.json()["error"]["code"] == "method_not_allowed"


def test_rule_openapi_strict_flags(server, alice):
    """A number is not a boolean: ``assistant: 0`` answers 422 as the schema says."""
    r = alice.request("PUT", f"/v1/conversations/{uuid.uuid4()}",
                      json={"title": "t", "assistant": 0})
    assert r.status_code == 422 and "assistant" in r.json()["error"]["message"]
