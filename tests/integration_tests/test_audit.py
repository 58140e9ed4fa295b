"""The audit handler on a user's own chain, in process (fake experts, tiny real model)."""

from __future__ import annotations

import io
import json
import threading

import pytest
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_domain_router import DomainClassifier, DomainRouter
from langchain_domain_router.audit import (
    AuditCallbackHandler,
    JsonlAuditSink,
    audit_record,
    redact,
)
from tests.conftest import fake_expert, make_config

QUESTION = "미분계수의 정의는?"


class ListSink:
    def __init__(self) -> None:
        self.records: list[dict] = []

    def write(self, record) -> None:
        self.records.append(dict(record))


@pytest.fixture(scope="module")
def chain(math_checkpoint):
    router = DomainRouter.from_config(
        make_config(math=fake_expert("미분 답변")),
        classifier=DomainClassifier.from_pretrained(math_checkpoint),
    )
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    return prompt | router | StrOutputParser()


def test_one_record_per_answer_without_the_prompt(chain, tmp_path):
    path = tmp_path / "audit.jsonl"
    handler = AuditCallbackHandler(path)
    answers = chain.batch([{"question": QUESTION}] * 3, config={"callbacks": [handler]})
    handler.sink.close()
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert answers == ["미분 답변"] * 3 and len(records) == 3
    assert {(r["domain"], r["expert"], r["reason"]) for r in records} == {
        ("Math", "math", "confident")
    }
    assert "question" not in records[0] and QUESTION not in path.read_text(encoding="utf-8")


async def test_the_prompt_is_recorded_only_when_enabled(chain):
    sink = ListSink()
    await chain.ainvoke(
        {"question": QUESTION},
        config={"callbacks": [AuditCallbackHandler(sink, include_prompt=True)]},
    )
    assert sink.records[0]["question"] == QUESTION


class ThreadSink(ListSink):
    def write(self, record) -> None:
        super().write({**record, "thread": threading.get_ident()})


async def test_records_are_written_on_the_event_loop_from_only_the_events_needed(chain):
    """No executor hop per callback event, and no model or chain events unless needed."""
    sink = ThreadSink()
    handler = AuditCallbackHandler(sink)
    assert handler.ignore_chain and handler.ignore_chat_model and handler.ignore_llm
    assert not AuditCallbackHandler(sink, include_prompt=True).ignore_chain
    await chain.ainvoke({"question": QUESTION}, config={"callbacks": [handler]})
    assert [r["thread"] for r in sink.records] == [threading.get_ident()]


def test_secrets_are_scrubbed(monkeypatch):
    monkeypatch.setenv("MY_PROVIDER_API_KEY", "topsecret-value-123")
    routing = {
        "request_id": "r1",
        "top_k": [{"label": "Law", "score": 0.9}],
        "error": "AuthenticationError: Incorrect API key provided: sk-abc123456789xyz. "
        "api_key=hunter22hunter header Bearer eyJhbGciOi token topsecret-value-123 and cfg-77777",
    }
    record = audit_record(routing, secrets={"cfg-77777"})
    text = json.dumps(record)
    for secret in ("sk-abc123456789xyz", "hunter22hunter", "eyJhbGciOi", "topsecret", "cfg-77777"):
        assert secret not in text
    assert record["scores"] == {"Law": 0.9} and record["request_id"] == "r1"
    assert redact("no secrets here") == "no secrets here"


def test_a_broken_sink_never_fails_the_answer(chain):
    class Broken:
        def write(self, record) -> None:
            msg = "disk full"
            raise OSError(msg)

    handler = AuditCallbackHandler(Broken())
    assert chain.invoke({"question": QUESTION}, config={"callbacks": [handler]}) == "미분 답변"


def test_jsonl_sink_to_a_stream(monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr("sys.stdout", buffer)
    sink = JsonlAuditSink("-")
    sink.write({"a": "가"})
    sink.close()
    assert json.loads(buffer.getvalue()) == {"a": "가"}
