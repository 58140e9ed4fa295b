"""What ``classify`` and ``route`` print: ``rich`` tables when installed, else plain text."""

from __future__ import annotations

import sys
from typing import Any

MAX_SHOWN_CHARS = 80
"""Longer questions are cut (with an ellipsis) in the text output; ``--json`` keeps them."""
UNSURE_REASONS = frozenset({"low_confidence", "low_margin"})
"""Routing reasons under which no domain is meant: the top label is only a best guess."""


def write(text: str) -> None:
    """Print one line to stdout."""
    sys.stdout.write(text + "\n")


def shorten(question: str) -> str:
    """One line of at most ``MAX_SHOWN_CHARS`` characters, for the text output."""
    line = " ".join(question.split())
    if len(line) <= MAX_SHOWN_CHARS:
        return line
    return line[: MAX_SHOWN_CHARS - 1].rstrip() + "…"


def rich_console() -> Any:
    """A ``rich`` console, or ``None`` when rich is not installed (the ``[cli]`` extra)."""
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console()


def print_prediction(question: str, prediction: dict[str, Any]) -> None:
    """Print a classification: the top domains and their probabilities."""
    console = rich_console()
    question = shorten(question)
    if console is None:
        write(question)
        write(
            f"domain: {prediction['label']} ({prediction['supercategory']}) "
            f"confidence {prediction['score']:.3f}"
        )
        for item in prediction["top_k"]:
            write(f"  {item['label']:<45} {item['score']:.3f}")
        return
    from rich.table import Table

    table = Table(title=question, title_justify="left")
    table.add_column("domain")
    table.add_column("probability", justify="right")
    for item in prediction["top_k"]:
        table.add_row(item["label"], f"{item['score']:.3f}")
    console.print(table)
    console.print(
        f"[bold]{prediction['label']}[/bold] ({prediction['supercategory']}), "
        f"confidence [bold]{prediction['score']:.3f}[/bold], model {prediction['model_version']}"
    )


def print_route(question: str, answer: str, routing: dict[str, Any]) -> None:
    """Print where a question went, why, and the answer."""
    offline = " (offline expert: the answer says why)" if routing.get("offline") else ""
    guess = f"{routing['domain']} ({routing['score']:.2f}, {routing['supercategory']})"
    if routing["reason"] in UNSURE_REASONS:
        guess = f"no domain (best guess: {guess})"
    rows = [
        ("question", shorten(question)),
        ("domain", guess),
        ("expert", f"{routing['expert']} [{routing['model']}] reason={routing['reason']}{offline}"),
        ("why", routing["explanation"]),
    ]
    console = rich_console()
    if console is None:
        for name, value in rows:
            write(f"{name:<9}: {value}")
        write(f"\n{answer}")
        return
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    for name, value in rows:
        table.add_row(f"[bold]{name}[/bold]", escape(str(value)))
    console.print(table)
    title = "offline expert" if routing.get("offline") else f"answer from {routing['expert']}"
    console.print(Panel(escape(answer), title=title, title_align="left"))
