"""Redaction that never breaks what it redacts: log records and response bodies."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from uvicorn.logging import AccessFormatter

from langchain_domain_router._redact import REDACTED, RedactingFilter
from langchain_domain_router.server._redacting import RedactingMiddleware

KEY = "cfgkey-7Hq2LmZ9xR4t"


def _record(msg: str, args: Any) -> logging.LogRecord:
    return logging.LogRecord("test", logging.INFO, __file__, 1, msg, args, None)


def test_an_access_record_keeps_its_arguments_for_uvicorns_formatter():
    args = ("127.0.0.1:5000", "GET", f"/router/invoke?api_key={KEY}", "1.1", 200)
    record = _record('%s - "%s %s HTTP/%s" %d', args)
    assert RedactingFilter({KEY}).filter(record)
    assert isinstance(record.args, tuple) and len(record.args) == len(args)
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s').format(record)
    assert line == f'127.0.0.1:5000 - "GET /router/invoke?api_key={REDACTED} HTTP/1.1" 200 OK'


def test_a_clean_record_is_left_as_it_came():
    args = ("127.0.0.1:5000", "GET", "/healthz", "1.1", 200)
    record = _record('%s - "%s %s HTTP/%s" %d', args)
    RedactingFilter({KEY}).filter(record)
    assert record.args is args


@pytest.mark.parametrize(
    ("msg", "args"),
    [
        ("api_key=%s", (KEY,)),  # the rule spans the template and the argument
        ("failed: %s (%d tries)", (ValueError(f"Bearer {KEY}"), 3)),
        ("%(error)s", ({"error": f"Incorrect API key provided: {KEY}"},)),  # a mapping
    ],
)
def test_a_secret_anywhere_in_a_record_is_redacted_and_the_record_still_formats(msg, args):
    record = _record(msg, args)
    shape = type(record.args), len(record.args or ())
    RedactingFilter({KEY}).filter(record)
    assert (type(record.args), len(record.args or ())) == shape
    text = logging.Formatter().format(record)
    assert KEY not in text and REDACTED in text


async def _respond(app: RedactingMiddleware, path: str = "/") -> tuple[dict[str, Any], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await app({"type": "http", "method": "POST", "path": path}, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0], body


def _app(content_type: bytes, chunks: list[bytes], *, length: bool) -> RedactingMiddleware:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", content_type)]
        if length:
            headers.append((b"content-length", str(sum(map(len, chunks))).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})

    return RedactingMiddleware(app, secrets={KEY})


def test_a_json_body_is_redacted_value_by_value_and_its_length_fixed():
    # Compact JSON: a rule run over the raw text would take ``8080","who":"a`` for the
    # user-info of a URL and break the document.
    document = {"url": "http://host:8080", "who": "a@b", "error": f"key {KEY} refused"}
    body = json.dumps(document, separators=(",", ":")).encode()
    app = _app(b"application/json", [body[:20], body[20:]], length=True)
    start, sent = asyncio.run(_respond(app))
    assert json.loads(sent) == {**document, "error": f"key {REDACTED} refused"}
    assert dict(start["headers"])[b"content-length"] == str(len(sent)).encode()


def test_a_stream_is_redacted_line_by_line_even_when_a_key_is_cut_between_chunks():
    events = [
        f'event: data\r\ndata: {{"message": "Incorrect API key provided: {KEY}"}}\r\n\r\n',
        "event: end\r\n\r\n",
    ]
    stream = "".join(events).encode()
    cut = stream.index(KEY.encode()) + 4
    app = _app(b"text/event-stream", [stream[:cut], stream[cut:]], length=False)
    start, sent = asyncio.run(_respond(app))
    lines = sent.decode().split("\r\n")
    assert json.loads(lines[1].removeprefix("data: ")) == {
        "message": f"Incorrect API key provided: {REDACTED}"
    }
    assert lines[2:] == ["", "event: end", "", ""]
    assert b"content-length" not in dict(start["headers"])


def test_static_files_pass_untouched():
    script = b'const auth={password:e.value,token:"sk-abcdefgh"};'
    start, sent = asyncio.run(_respond(_app(b"application/javascript", [script], length=True)))
    assert sent == script


def test_a_file_sent_by_path_gets_its_start_first():
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": "report.json"})

    sent: list[str] = []

    async def send(message: Any) -> None:
        sent.append(message["type"])

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/"}
    asyncio.run(RedactingMiddleware(app, secrets={KEY})(scope, receive, send))
    assert sent == ["http.response.start", "http.response.pathsend"]
