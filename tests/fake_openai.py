"""A small OpenAI-compatible chat-completions server for loopback tests and benchmarks.

The requested model name picks the behaviour:

- ``fake-answer`` (or any other name): answers, as JSON or as an SSE stream.
- ``fake-500``: always fails with HTTP 500.
- ``fake-hang``: waits ``hang_s`` seconds before answering (a hung endpoint).
- ``fake-flaky``: fails with HTTP 500 on every ``1 / failure_rate``-th call, and hangs
  like ``fake-hang`` on every ``1 / hang_rate``-th call (other calls than the failures).
- ``fake-scripted``: fails when the last user message contains ``[[500]]``, hangs when
  it contains ``[[hang]]``, answers otherwise (one expert, every behaviour). With
  ``[[cut]]`` a stream breaks off half-way with an error event (a plain request fails
  with 500); with ``[[cut-once]]`` that happens only on the first call for the question.
- ``fake-401``: refuses with HTTP 401, quoting the caller's API key the way some
  providers and proxies do.

Answers read ``[<model>] 답변: <question>``, with token usage; a request with ``tools``
is answered by a call of the first tool with ``{"question": <question>}``. ``GET /stats``
returns the calls per model; ``GET /last`` the messages of the last chat request and its
other fields (``request``). Run it alone with
``python -m tests.fake_openai --port 0``: it prints its base URL, then serves until
interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAIL_MARKER = "[[500]]"
HANG_MARKER = "[[hang]]"
CUT_MARKER = "[[cut]]"
CUT_ONCE_MARKER = "[[cut-once]]"


class FakeOpenAIServer(ThreadingHTTPServer):
    """The server; ``start()`` serves from a daemon thread, ``stop()`` ends it."""

    daemon_threads = True
    request_queue_size = 256  # the load benchmark opens many connections at once

    def __init__(
        self,
        port: int = 0,
        *,
        hang_s: float = 30.0,
        failure_rate: float = 0.1,
        hang_rate: float = 0.0,
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.hang_s = hang_s
        self.failure_rate = failure_rate
        self.hang_rate = hang_rate
        self.calls: Counter[str] = Counter()
        self.cut_once: set[str] = set()
        self.last_messages: list[dict[str, Any]] = []
        self.last_request: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def count(self, model: str) -> int:
        with self.lock:
            self.calls[model] += 1
            return self.calls[model]

    def start(self) -> FakeOpenAIServer:
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # wakes hanging handlers
        if self.thread is not None:  # shutdown() waits for a serve_forever loop to end
            self.shutdown()
            self.thread = None
        self.server_close()

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _invalid_content(messages: list[dict[str, Any]]) -> str | None:
    """OpenAI's 400 for a content part that is not an object (e.g. a bare string)."""
    for i, message in enumerate(messages):
        content = message.get("content")
        for j, part in enumerate(content if isinstance(content, list) else []):
            if not isinstance(part, dict):
                where = f"messages[{i}].content[{j}]"
                return f"Invalid type for '{where}': expected an object, got {type(part).__name__}"
    return None


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(part.get("text", "") for part in content)
            return str(content or "")
    return ""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the OpenAI client expects
    server: FakeOpenAIServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        """Stay quiet: thousands of requests in a benchmark."""

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/stats":
            with self.server.lock:
                self._send_json(200, dict(self.server.calls))
        elif self.path.rstrip("/") == "/last":
            with self.server.lock:
                last = {"messages": self.server.last_messages, "request": self.server.last_request}
                self._send_json(200, last)
        else:
            self._send_json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self._send_json(400, {"error": {"message": "invalid JSON"}})
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if problem := _invalid_content(request.get("messages") or []):
            self._send_json(400, {"error": {"message": problem, "type": "invalid_request_error"}})
            return
        model = str(request.get("model", "fake-answer"))
        question = _last_user_text(request.get("messages") or [])
        call = self.server.count(model)
        with self.server.lock:
            self.server.last_messages = list(request.get("messages") or [])
            self.server.last_request = {k: v for k, v in request.items() if k != "messages"}
        try:
            if model == "fake-401":
                self._refuse_key()
                return
            cut = self._cuts(model, question)
            if cut and not request.get("stream"):
                self._send_json(500, {"error": {"message": "upstream connection lost"}})
                return
            if self._fails(model, question, call):
                error = {"message": "fake upstream failure", "type": "server_error"}
                self._send_json(500, {"error": error})
                return
            if self._hangs(model, question, call):
                if self.server.stopping.wait(self.server.hang_s):
                    return
            answer = f"[{model}] 답변: {question[:60]}"
            usage = {
                "prompt_tokens": max(1, len(question) // 2),
                "completion_tokens": len(answer.split()),
            }
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
            call = _tool_call(request, question)
            if request.get("stream"):
                self._stream(model, answer, usage, request, cut=cut, call=call)
            else:
                self._send_json(200, _completion(model, answer, usage, call))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timed out): nothing to answer

    def _refuse_key(self) -> None:
        authorization = self.headers.get("Authorization", "")
        key = authorization.removeprefix("Bearer ").strip()
        message = (
            f"Incorrect API key provided: {key}. Request had header "
            f"'Authorization: {authorization}' via http://proxy-user:{key}@proxy.internal:3128"
        )
        self._send_json(401, {"error": {"message": message, "type": "invalid_request_error"}})

    def _cuts(self, model: str, question: str) -> bool:
        if model != "fake-scripted":
            return False
        if CUT_MARKER in question:
            return True
        if CUT_ONCE_MARKER in question:
            with self.server.lock:
                first = question not in self.server.cut_once
                self.server.cut_once.add(question)
            return first
        return False

    def _fails(self, model: str, question: str, call: int) -> bool:
        if model == "fake-500":
            return True
        if model == "fake-scripted":
            return FAIL_MARKER in question
        if model == "fake-flaky" and self.server.failure_rate > 0:
            period = max(1, round(1 / self.server.failure_rate))
            return call % period == 0
        return False

    def _hangs(self, model: str, question: str, call: int) -> bool:
        if model == "fake-scripted":
            return HANG_MARKER in question
        if model == "fake-flaky" and self.server.hang_rate > 0:
            period = max(1, round(1 / self.server.hang_rate))
            return (call + 1) % period == 0  # off the failure period (10 % and 5 % never meet)
        return model == "fake-hang"

    def _stream(
        self,
        model: str,
        answer: str,
        usage: dict[str, int],
        request: dict[str, Any],
        *,
        cut: bool = False,
        call: dict[str, Any] | None = None,
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        chunk_id = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        words = answer.split(" ")
        deltas = [{"role": "assistant", "content": ""}]
        deltas += [{"content": word if i == 0 else " " + word} for i, word in enumerate(words)]
        if call is not None:
            deltas[1:] = [{"tool_calls": [{"index": 0, **call}]}]
        for index, delta in enumerate(deltas):
            if cut and index == len(deltas) // 2:
                self._event(
                    {"error": {"message": "upstream connection lost", "type": "server_error"}}
                )
                self.close_connection = True
                return
            self._event(_chunk(chunk_id, model, delta, None))
        self._event(_chunk(chunk_id, model, {}, "stop" if call is None else "tool_calls"))
        if (request.get("stream_options") or {}).get("include_usage"):
            self._event({**_chunk(chunk_id, model, {}, None), "choices": [], "usage": usage})
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def _event(self, payload: dict[str, Any]) -> None:
        self.wfile.write(b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n")
        self.wfile.flush()


def _chunk(chunk_id: str, model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": chunk_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def _tool_call(request: dict[str, Any], question: str) -> dict[str, Any] | None:
    """A call of the request's first tool, or ``None`` without tools."""
    tools = request.get("tools") or []
    if not tools or request.get("tool_choice") == "none":
        return None
    arguments = json.dumps({"question": question}, ensure_ascii=False)
    name = tools[0]["function"]["name"]
    return {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}


def _completion(
    model: str, answer: str, usage: dict[str, int], call: dict[str, Any] | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer}
    if call is not None:
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "stop" if call is None else "tool_calls",
                "logprobs": None,
            }
        ],
        "usage": usage,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--hang-s", type=float, default=30.0)
    parser.add_argument("--failure-rate", type=float, default=0.1)
    parser.add_argument("--hang-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(
        args.port, hang_s=args.hang_s, failure_rate=args.failure_rate, hang_rate=args.hang_rate
    )
    sys.stdout.write(server.base_url + "\n")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stopping.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
