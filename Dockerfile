# The domain router as an HTTP service (LangServe + uvicorn), CPU only.
#   docker build -t domain-router .
#   docker run -p 8000:8000 -e OPENAI_API_KEY domain-router
#   docker run -p 8000:8000 -v $PWD/router.yaml:/config/router.yaml domain-router \
#       serve --host 0.0.0.0 --port 8000 --config /config/router.yaml --workers 2
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The CPU wheel of torch first: a bare `torch` from PyPI is a multi-GB CUDA build.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==2.13.0"

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY langchain_domain_router ./langchain_domain_router
# serve,postgres for replicas that share threads in PostgreSQL (deploy/).
ARG EXTRAS=serve
RUN pip install ".[${EXTRAS}]"

# No root at run time; the audit log (if enabled) goes under /var/log/domain-router.
RUN useradd --create-home --uid 10001 router \
    && mkdir -p /var/log/domain-router && chown router /var/log/domain-router
USER router

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"

# It listens on every interface, so it needs bearer keys: DOMAIN_ROUTER_API_KEYS=<key file>
# (or --api-keys FILE); without them it refuses to start unless --allow-unauthenticated.
ENTRYPOINT ["domain-router"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
