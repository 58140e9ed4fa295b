"""``/batch`` answered per item: invalid inputs get error entries, the rest their answers.

LangServe validates a whole batch up front and runs it as one call, so one bad input
used to fail every item. Here the invalid inputs are taken out, the valid ones run as
one LangServe batch (so the classifier still runs one padded forward pass per chunk),
and the answers are put back in order, LangChain's ``batch(return_exceptions=True)``
style:

- ``output[i]``: the answer, or ``{"error": {"status_code": 422, "message": ...}}``;
- ``metadata.run_ids[i]``: the run id, ``null`` for an error entry;
- HTTP 200 when every input was answered, 207 when some were, 422 when none was.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_domain_router.server._asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    replay,
    send_json,
)
from langchain_domain_router.server._requests import CHECKED_BODY


def error_entry(status: int, message: str) -> dict[str, Any]:
    """The entry that stands in ``output`` for an input that got no answer."""
    return {"error": {"status_code": status, "message": message}}


async def _call(app: ASGIApp, scope: Scope, receive: Receive, body: bytes) -> tuple[int, bytes]:
    """Run ``app`` on ``body`` and return its status and whole response body."""
    status = 500
    chunks: list[bytes] = []

    async def capture(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, replay(body, receive), capture)
    return status, b"".join(chunks)


async def answer_batch(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    payload: dict[str, Any],
    problems: dict[int, str],
    read: list[Any],
) -> None:
    """Answer a batch whose inputs at ``problems``' indices are invalid.

    Args:
        app: The LangServe app.
        scope: The request's scope.
        receive: The request's ``receive``.
        send: Where the answer goes.
        payload: The decoded request body (``inputs``, ``config``, ``kwargs``).
        problems: The error message of each invalid input, by index.
        read: The inputs as read (``Question``), which the app takes as they are.
    """
    inputs: list[Any] = payload["inputs"]
    valid = [index for index in range(len(inputs)) if index not in problems]
    answered: dict[int, tuple[Any, Any, Any]] = {}
    if valid:
        request = dict(payload, inputs=[inputs[index] for index in valid])
        if isinstance(payload.get("config"), list):
            request["config"] = [payload["config"][index] for index in valid]
        # The JSON of the valid inputs, for an app that reads the body; the routes take
        # the inputs already read.
        taken = {**scope, CHECKED_BODY: dict(request, inputs=[read[index] for index in valid])}
        status, body = await _call(app, taken, receive, json.dumps(request).encode())
        if status != 200:  # a problem of the whole request (its config), or of the server
            await send_json(send, status, json.loads(body or b"null"), {})
            return
        result = json.loads(body)
        metadata = result.get("metadata") or {}
        runs = zip(
            result["output"],
            metadata.get("run_ids") or [None] * len(valid),
            metadata.get("responses") or [None] * len(valid),
            strict=True,
        )
        answered = dict(zip(valid, runs, strict=True))
    empty = (None, None, None)
    content = {
        "output": [
            answered[i][0] if i in answered else error_entry(422, problems[i])
            for i in range(len(inputs))
        ],
        "metadata": {
            "run_ids": [answered.get(i, empty)[1] for i in range(len(inputs))],
            "responses": [answered.get(i, empty)[2] for i in range(len(inputs))],
        },
        "callback_events": [],
    }
    await send_json(send, 207 if valid else 422, content, {})
