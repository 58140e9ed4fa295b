"""One redaction rule for every string the router writes out.

Provider and proxy errors quote credentials (``401 ... Bearer sk-...``, ``Incorrect API
key provided: ...``), and those errors reach the routing record, the answer of the
offline expert, logs, metrics and audit lines. Every such string passes through
``redact``: it removes the values of secret-named environment variables and of the
configured ``api_key``-like settings, bearer tokens, ``sk-...`` keys, ``key=value``
credentials and the user-info part of URLs.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, SecretStr

if TYPE_CHECKING:
    from langchain_domain_router.profiles import ExpertProfile

REDACTED = "[redacted]"
"""What a secret is replaced with."""
MIN_SECRET_CHARS = 6
"""Shorter "secrets" (e.g. ``test``) would redact ordinary words."""

_SECRET_NAME = re.compile(r"(key|token|secret|password|passwd|credential|dsn)", re.IGNORECASE)
_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|DSN)$", re.IGNORECASE)
_SK_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-*]{6,}")
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=\-]{6,}")
_NAMED = re.compile(
    r"(?i)\b(api[_-]?key|x-api-key|access[_-]?token|auth[_-]?token|password|passwd|secret"
    r"|authorization)([\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}]+"
)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@:]+(?::[^/\s@]*)?@")


def environment_secrets() -> set[str]:
    """Return the values of environment variables whose names mark them as secrets."""
    # Names first: only the few secret-named values are read (and decoded).
    values = (os.environ[name] for name in os.environ if _secret_name(name))
    return {value for value in values if len(value) >= MIN_SECRET_CHARS}


@functools.lru_cache(maxsize=1024)
def _secret_name(name: str) -> bool:
    return _SECRET_ENV.search(name) is not None


def model_secrets(model: Any, kwargs: Mapping[str, Any] | None = None) -> set[str]:
    """Return the credentials a chat model (or its ``init_chat_model`` arguments) holds.

    Args:
        model: A chat-model instance (its ``SecretStr`` fields are read) or a model name.
        kwargs: ``model_kwargs``; values under secret-looking names are returned.

    Returns:
        The secret values, each at least ``MIN_SECRET_CHARS`` long.
    """
    values = [value for key, value in (kwargs or {}).items() if _SECRET_NAME.search(str(key))]
    if isinstance(model, BaseModel):
        fields = [getattr(model, name, None) for name in type(model).model_fields]
        values += [value for value in fields if isinstance(value, SecretStr)]
    secrets = set()
    for value in values:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and len(text) >= MIN_SECRET_CHARS:
            secrets.add(text)
    return secrets


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace known secret values and credential-shaped strings in ``text``.

    Args:
        text: Any text.
        secrets: Exact values to remove besides secret-named environment variables
            (e.g. configured ``api_key`` values, see ``model_secrets``).

    Returns:
        The text with every secret replaced by ``[redacted]``.

    Example:
        ```python
        redact("401: Bearer sk-abc123456 for http://bob:pw@proxy:8080")
        # '401: Bearer [redacted] for http://[redacted]@proxy:8080'
        ```
    """
    return _scrub(text, _known_secrets(secrets)) if text else text


def redact_value(value: Any, secrets: Iterable[str] = ()) -> Any:
    """Redact every string inside ``value`` (dicts, lists and tuples are walked)."""
    known = _known_secrets(secrets)  # the environment is read once per value, not per string

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return _scrub(item, known)
        if isinstance(item, Mapping):
            return {key: walk(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return type(item)(walk(inner) for inner in item)
        return item

    return walk(value)


def _known_secrets(secrets: Iterable[str]) -> list[str]:
    """``secrets`` and the secret-named environment variables, longest first."""
    known = {s for s in set(secrets) | environment_secrets() if len(s) >= MIN_SECRET_CHARS}
    return sorted(known, key=len, reverse=True)


def _scrub(text: str, known: list[str]) -> str:
    for secret in known:
        text = text.replace(secret, REDACTED)
    text = _SK_KEY.sub(REDACTED, text)
    text = _BEARER.sub(rf"\1\2{REDACTED}", text)
    text = _NAMED.sub(rf"\1\2{REDACTED}", text)
    return _URL_USERINFO.sub(rf"\1{REDACTED}@", text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the message, its arguments and its traceback.

    A record keeps its shape: ``args`` stays a tuple of the same length (or a mapping
    with the same keys), because formatters read it (uvicorn's access formatter
    unpacks the request line from it). Only a record whose formatted message holds a
    secret is touched.

    Put it on handlers (``install_log_redaction``) rather than loggers: a handler's
    filters see the records of every logger that reaches it, libraries' included.

    Example:
        ```python
        handler = logging.StreamHandler()
        handler.addFilter(RedactingFilter({"my-api-key-value"}))
        ```
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = set(secrets)

    def filter(self, record: logging.LogRecord) -> bool:  # noqa: D102 - logging API
        known = _known_secrets(self.secrets)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: leave it to the formatter
            return True
        clean = _scrub(message, known)
        if clean != message:
            _redact_record(record, clean, known)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _scrub(record.exc_text, known)
        return True


class _RedactedArg:
    """A log argument whose ``str`` or ``repr`` held a secret: formats as the redacted text."""

    def __init__(self, value: object, known: list[str]) -> None:
        self.text, self.representation = _scrub(str(value), known), _scrub(repr(value), known)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.representation


def _redact_arg(value: Any, known: list[str]) -> Any:
    if isinstance(value, str):
        return _scrub(value, known)
    if isinstance(value, int | float | bool) or value is None:  # %d and %f must still work
        return value
    wrapped = _RedactedArg(value, known)
    return value if (wrapped.text, wrapped.representation) == (str(value), repr(value)) else wrapped


def _redact_record(record: logging.LogRecord, clean: str, known: list[str]) -> None:
    """Redact ``record.msg`` and each of ``record.args`` in place, keeping their shape."""
    args = record.args
    if isinstance(args, Mapping):
        record.args = {key: _redact_arg(value, known) for key, value in args.items()}
    elif isinstance(args, tuple):
        record.args = tuple(_redact_arg(value, known) for value in args)
    if isinstance(record.msg, str):
        record.msg = _scrub(record.msg, known)
    try:
        if record.getMessage() == clean:
            return
    except (TypeError, ValueError):  # redacting the template broke a placeholder
        pass
    # A secret spanned the template and an argument: the redacted text as the template,
    # with every positional argument consumed as an empty string ("%.0s").
    record.msg = clean.replace("%", "%%")
    if isinstance(record.args, tuple):
        record.msg += "%.0s" * len(record.args)


def install_log_redaction(secrets: Iterable[str] = ()) -> RedactingFilter:
    """Add a ``RedactingFilter`` to every handler of the root and the named loggers.

    Args:
        secrets: Exact values to remove besides secret-named environment variables.

    Returns:
        The filter (remove it from the handlers to undo).
    """
    redacting = RedactingFilter(secrets)
    loggers = [logging.getLogger(), *logging.root.manager.loggerDict.values()]
    handlers = [h for logger in loggers for h in getattr(logger, "handlers", [])]
    if logging.lastResort is not None:  # where records go when no handler takes them
        handlers.append(logging.lastResort)
    for handler in handlers:
        present = [f for f in handler.filters if isinstance(f, RedactingFilter)]
        if present:  # a second app in this process: its secrets join the first's
            present[0].secrets |= redacting.secrets
        else:
            handler.addFilter(redacting)
    return redacting


def profile_secrets(profile: ExpertProfile) -> set[str]:
    """Return the credentials of every model an expert profile may call."""
    return {
        secret
        for option in profile.options()
        for secret in model_secrets(option.model, option.model_kwargs)
    }
