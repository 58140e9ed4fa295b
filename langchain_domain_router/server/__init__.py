"""The HTTP server: the router and the classifier as LangServe routes (``[serve]`` extra).

Example:
    ```python
    from langchain_domain_router.server import create_app

    app = create_app("router.yaml")  # uvicorn module:app --workers 4
    ```
"""

try:
    import fastapi  # noqa: F401
    import langserve  # noqa: F401
    import prometheus_client  # noqa: F401
    import sse_starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:
    # Named by the installed distribution, the extra resolves without an index that
    # publishes the package: this works for a clone's editable install and a wheel alike.
    _msg = (
        f"the server needs packages that are not installed ({exc.name}): "
        'pip install "langchain-domain-router[serve]"'
        ' (from a clone, pip install -e ".[serve]" or make serve does the same)'
    )
    raise ImportError(_msg) from exc

from langchain_domain_router.server._app import create_app, create_app_from_env
from langchain_domain_router.server._checkpointer import CheckpointerSpec
from langchain_domain_router.server._metrics import RouterMetrics
from langchain_domain_router.server._requests import RouterRequest, ServedInput
from langchain_domain_router.server._serve import serve
from langchain_domain_router.server._settings import ServerSettings

__all__ = [
    "CheckpointerSpec",
    "RouterMetrics",
    "RouterRequest",
    "ServedInput",
    "ServerSettings",
    "create_app",
    "create_app_from_env",
    "serve",
]
