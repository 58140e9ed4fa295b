"""A bare LangServe app serving a trivial Runnable: the floor the router's routes sit on.

``uvicorn benchmarks._bare_app:app`` serves ``/echo`` (``RunnableLambda`` returning its
input) with no middleware, no model and no graph, so a load run against it measures
FastAPI + LangServe + uvicorn alone on this machine.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from langchain_core.runnables import RunnableLambda
from langserve import add_routes


def _echo(value: Any) -> Any:
    return value


app = FastAPI(title="bare LangServe")
add_routes(app, RunnableLambda(_echo).with_types(input_type=str, output_type=str), path="/echo")
