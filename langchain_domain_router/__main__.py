"""``python -m langchain_domain_router``: the ``domain-router`` command line."""

from langchain_domain_router.cli import main

raise SystemExit(main())
