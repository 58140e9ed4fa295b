"""``python -m langchain_domain_router.training``."""

import sys

from langchain_domain_router.training._cli import main

sys.exit(main())
