"""Where the routing graph spends its time: a pyinstrument profile of repeated invokes.

python benchmarks/profile_graph.py --model DIR [--quick] [--async]
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import QUESTIONS, check_model, parser  # noqa: E402
from benchmarks.bench_speed import FAST, VARIANTS, classifier_for, exported  # noqa: E402


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--async", dest="use_async", action="store_true", help="profile ainvoke")
    args = p.parse_args()
    check_model(args.model)
    from langchain_core.language_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage
    from pyinstrument import Profiler

    from langchain_domain_router import ExpertProfile, RouterConfig, build_router_graph

    expert = GenericFakeChatModel(messages=itertools.cycle([AIMessage(content="ok")]))
    config = RouterConfig(
        experts=[ExpertProfile(name="stem", model=expert, supercategories=["STEM"])],
        fallback=ExpertProfile(name="general", model=expert),
    )
    classifier = classifier_for(args.model, exported(args.model), **VARIANTS[FAST])
    graph = build_router_graph(config, classifier=classifier)
    count = 100 if args.quick else 1000
    inputs = [{"question": q} for q in itertools.islice(itertools.cycle(QUESTIONS), count)]

    async def arun() -> None:
        for state in inputs:
            await graph.ainvoke(state)

    for state in inputs[:50]:
        graph.invoke(state)
    profiler = Profiler(interval=0.0002)
    with profiler:
        if args.use_async:
            asyncio.run(arun())
        else:
            for state in inputs:
                graph.invoke(state)
    print(f"{count} graph.{'ainvoke' if args.use_async else 'invoke'} calls, {FAST} classifier")
    print(profiler.output_text(unicode=False, color=False))


if __name__ == "__main__":
    main()
