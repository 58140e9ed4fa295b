"""An upstream that quotes the API key in its 401 error: the key reaches no output channel.

The server runs as a real process; its experts call the fake OpenAI server's
``fake-401`` model, which echoes the caller's key (bare, as a bearer header and inside
a proxy URL). ``math`` holds its key in the config, ``general`` reads it from
``OPENAI_API_KEY``; both fail, so the offline expert answers with the errors in its
text (and ``/v1/chat/completions`` answers 502). The server itself requires a bearer
key (``--api-keys``). Every channel is then searched for the three keys: HTTP responses
(invoke, batch, stream, stream_log, stream_events, chat completions streamed or not,
models, schemas, playground, docs, readyz, metrics, a 401: every route the app mounts,
found by walking its route table), the server log, the audit file and the SQLite
checkpointer's files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langserve import RemoteRunnable
from langserve.lzstring import LZString

from langchain_domain_router._redact import REDACTED, redact
from langchain_domain_router.server import create_app
from tests.fake_openai import FakeOpenAIServer
from tests.integration_tests._servers import (
    ServerProcess,
    child_env,
    free_port,
    router_config,
    serve_command,
    write_config,
)

CONFIG_KEY = "cfgkey-7Hq2LmZ9xR4t"  # neither sk- nor bearer shaped: only the config knows it
ENV_KEY = "envkey-Pw3nV8sK1dQ6"
SERVER_KEY = "ownkey-Vb7nQ2xT9kLs"  # the router's own bearer key (--api-keys)
KEYS = (CONFIG_KEY, ENV_KEY, SERVER_KEY)
QUESTION = "벡터란?"
RUNNABLE_BODIES: dict[str, dict[str, Any]] = {
    "invoke": {"input": QUESTION},
    "stream": {"input": QUESTION},
    "stream_log": {"input": QUESTION},
    "stream_events": {"input": QUESTION},
    "batch": {"inputs": ["수열", "급수"]},
}
"""A valid body for each kind of POST route, by the path's last segment."""
CHAT_MESSAGES = [{"role": "user", "content": QUESTION}]
POST_BODIES: dict[str, list[dict[str, Any]]] = {
    **{kind: [body] for kind, body in RUNNABLE_BODIES.items()},
    "token_feedback": [{"token_or_url": "x", "key": "score", "score": 1}],
    "completions": [
        {"model": "domain-router", "messages": CHAT_MESSAGES},
        {"model": "domain-router", "messages": CHAT_MESSAGES, "stream": True},
    ],
}
PATH_PARAMETERS = {
    "{config_hash}": LZString.compressToEncodedURIComponent("{}"),
    "{file_path:path}": "index.html",
}


def served_requests(config: Path) -> Iterator[tuple[str, str, dict[str, Any] | None]]:
    """One valid request per route and method of the app the server builds from ``config``."""
    for route in create_app(config).routes:
        path = str(getattr(route, "path", ""))
        for name, value in PATH_PARAMETERS.items():
            path = path.replace(name, value)
        assert "{" not in path, f"no value for a parameter of {path}: add it to PATH_PARAMETERS"
        for method in sorted(set(getattr(route, "methods", None) or ()) - {"HEAD"}):
            if method == "GET":
                yield method, path, None
                continue
            kind = path.rsplit("/", 1)[-1]
            assert kind in POST_BODIES, f"no request for {method} {path}: add one to POST_BODIES"
            for body in POST_BODIES[kind]:
                yield method, path, body


def test_a_key_echoed_by_the_upstream_reaches_no_route_or_channel(
    math_checkpoint: Path,
    fake_openai: FakeOpenAIServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    config = router_config(math_checkpoint, fake_openai.base_url, expert_model="fake-401")
    config["experts"][0]["model_kwargs"]["api_key"] = CONFIG_KEY
    config["fallback"]["model"] = "openai:fake-401"
    del config["fallback"]["model_kwargs"]["api_key"]  # ChatOpenAI reads OPENAI_API_KEY
    path = write_config(tmp_path / "router.yaml", config)
    audit, database, log = tmp_path / "audit.jsonl", tmp_path / "threads.db", tmp_path / "log"
    port = free_port()
    keys = tmp_path / "keys.txt"
    keys.write_text(SERVER_KEY + "\n", encoding="utf-8")
    command = serve_command(
        path,
        port,
        "--audit-log",
        str(audit),
        "--checkpointer",
        f"sqlite:{database}",
        "--api-keys",
        str(keys),
    )
    command += ["--log-level", "info"]
    env = child_env(OPENAI_API_KEY=ENV_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)  # the app built here to list its routes
    requests = list(served_requests(path))
    assert any(p.endswith("/stream_log") for _, p, _ in requests)
    process = ServerProcess(command, port=port, log_path=log, env=env)
    url = process.wait_ready().url
    outputs: list[str] = []
    try:
        thread = {"configurable": {"thread_id": "leak-1"}}
        bearer = {"authorization": f"Bearer {SERVER_KEY}"}
        remote = RemoteRunnable(f"{url}/router", timeout=60, headers=bearer)
        answer = remote.invoke("미분이란?", thread)
        routing = answer.response_metadata["routing"]
        assert routing["reason"] == "expert_error" and routing["offline"]
        assert "401" in routing["error"] and REDACTED in routing["error"]
        assert REDACTED in str(answer.content)  # the offline answer quotes the error
        with httpx.Client(base_url=url, timeout=60, headers=bearer) as client:
            response = client.post("/router/stream", json={"input": "행렬이란?", "config": thread})
            outputs.append(response.text)
            for method, endpoint, body in requests:
                response = client.request(method, endpoint, json=body)
                # Every route answers: a refusal (4xx) would hide a leak from this test.
                # Chat completions: every expert failed upstream, so 502 with the record.
                expected = {"token_feedback": 400, "completions": 502}
                status = expected.get(endpoint.rsplit("/", 1)[-1], 200)
                assert response.status_code == status, (method, endpoint, response.text)
                outputs.append(response.text)
            wrong = {"authorization": f"Bearer {SERVER_KEY}x"}
            refused = client.post("/v1/chat/completions", json={}, headers=wrong)
            assert refused.status_code == 401
            outputs.append(refused.text)
    finally:
        process.stop()
    outputs.append(json.dumps([answer.model_dump()], ensure_ascii=False))
    outputs.append(log.read_text(errors="replace"))
    outputs.append(audit.read_text(encoding="utf-8"))
    checkpoint_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("threads.db*"))
    assert b"leak-1" in checkpoint_bytes and "미분이란?".encode() in checkpoint_bytes
    everything = "".join(outputs)
    assert "expert_error" in everything  # the failures are reported...
    assert "Incorrect API key provided: [redacted]" in everything  # ...with the echoed body
    for key in KEYS:  # ...without the keys
        assert key.encode() not in checkpoint_bytes, key
        for text in outputs:
            assert key not in text, (key, text[text.find(key) - 200 : text.find(key) + 50])


def test_one_rule_for_every_shape_of_credential(monkeypatch):
    monkeypatch.setenv("ACME_API_TOKEN", "acme-token-value-31")
    text = (
        "401 Incorrect API key provided: sk-proj-abcDEF123456. Authorization: Bearer abc.def.ghi"
        " via https://bob:hunter2@proxy:8080/v1, api_key='k-123456789', token acme-token-value-31"
        " and cfg-secret-999"
    )
    clean = redact(text, {"cfg-secret-999"})
    for secret in ("sk-proj", "abc.def.ghi", "bob", "hunter2", "k-123456789", "acme-token", "cfg-"):
        assert secret not in clean, secret
    assert clean.startswith("401 Incorrect API key provided: [redacted]")
    assert "https://[redacted]@proxy:8080/v1" in clean
    assert (
        redact("output tokens: 5, token limit reached") == "output tokens: 5, token limit reached"
    )
