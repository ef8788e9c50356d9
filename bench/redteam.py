"""Red-team campaign throughput: a measurement, not a test. Prints a Markdown table.

Run::

    .venv/bin/python bench/redteam.py [--probes 2000] [--concurrency 32] [--latency 0.05]

A fake OpenAI-compatible endpoint (``charter.evaluation._loopback``: asyncio streams,
HTTP/1.1 keep-alive, ``TCP_NODELAY``) runs in its own process and answers every
``/v1/chat/completions`` after ``--latency`` seconds. A campaign of ``--probes``
probes (the ``charter-default`` pack, cycled) runs against it through
``OpenAITarget`` at ``--concurrency`` requests in flight, detectors included.
With latency L and concurrency C the ideal throughput is C/L (640 req/s for
C=32, L=50 ms); the target is at least 90% of it. A second row sends the same
requests without detectors, to separate transport cost from judging cost. Each
row is the median of ``--repeat`` runs; the client's CPU time per request is
printed too (it varies less than throughput on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import time
from dataclasses import dataclass

from charter.evaluation._campaign import DEFAULT_SYSTEM_PROMPT, new_secrets, run_probes
from charter.evaluation._loopback import LoopbackServer
from charter.evaluation.detectors import builtin_detectors
from charter.evaluation.packs import Probe, load_pack
from charter.evaluation.targets import OpenAITarget

REPLIES = (
    "I'm sorry, but I can't help with that request.",
    "Sure! Here is a short answer: keep your card safe and never share your PIN with anyone. "
    "If you think your card was stolen, call the number on the back of it right away.",
    "Of course. Our branches open at 9am on weekdays; you can also reach us by phone.",
)


def _reply(messages: list[dict[str, str]]) -> str:
    return REPLIES[len(messages[-1]["content"]) % len(REPLIES)]


def _serve(latency: float, ready: multiprocessing.connection.Connection) -> None:
    async def main() -> None:
        server = LoopbackServer(delay=latency, reply=_reply)
        await server.start()
        ready.send(server.port)
        await asyncio.Event().wait()

    asyncio.run(main())


@dataclass(frozen=True)
class Row:
    label: str
    requests: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def probes(n: int) -> list[tuple[str, Probe]]:
    pack = load_pack("charter-default")
    base = pack.probes
    items = []
    for i in range(n):
        p = base[i % len(base)]
        items.append((pack.name, Probe(f"{p.id}#{i}", p.category, p.prompt, p.detector,
                                       p.system_hint, p.benign)))  # fmt: skip
    return items


async def campaign(base_url: str, n: int, concurrency: int, judge: bool) -> Row:
    target = OpenAITarget(base_url, "fake", concurrency=concurrency, retries=0, timeout=30)
    items = probes(n)
    await run_probes(target, items[:concurrency], system_prompt=DEFAULT_SYSTEM_PROMPT,
                     planted=new_secrets(), detectors=builtin_detectors(),
                     concurrency=concurrency)  # warm-up: open the connections  # fmt: skip
    try:
        start, cpu = time.perf_counter(), time.process_time()
        if judge:
            outcomes = await run_probes(
                target, items, system_prompt=DEFAULT_SYSTEM_PROMPT, planted=new_secrets(),
                detectors=builtin_detectors(), concurrency=concurrency,
            )  # fmt: skip
            assert len(outcomes) == n and all(o.error is None for o in outcomes)
        else:
            messages = [[{"role": "user", "content": p.prompt}] for _, p in items]
            semaphore = asyncio.Semaphore(concurrency)

            async def send(m: list[dict[str, str]]) -> str:
                async with semaphore:
                    return await target.chat(m)

            await asyncio.gather(*(send(m) for m in messages))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        await target.aclose()
    label = "campaign (OpenAITarget + detectors)" if judge else "transport only (OpenAITarget)"
    return Row(label, n, seconds, cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3, help="runs per row (median shown)")
    args = parser.parse_args()
    ideal = args.concurrency / args.latency
    parent, child = multiprocessing.Pipe()
    server = multiprocessing.Process(target=_serve, args=(args.latency, child), daemon=True)
    server.start()
    try:
        port = parent.recv()
        base_url = f"http://127.0.0.1:{port}/v1"
        load = os.getloadavg()
        rows = []
        for judge in (True, False):
            runs = [asyncio.run(campaign(base_url, args.probes, args.concurrency, judge))
                    for _ in range(args.repeat)]  # fmt: skip
            rows.append(sorted(runs, key=lambda r: r.seconds)[len(runs) // 2])
            spread = [f"{r.rate:.0f}" for r in runs]
            print(f"{rows[-1].label}: runs at {', '.join(spread)} req/s", flush=True)
        load_end = os.getloadavg()
    finally:
        server.terminate()
        server.join()
    print(f"Red-team throughput: {args.probes} probes, C={args.concurrency}, "
          f"L={args.latency * 1000:.0f} ms, ideal C/L = {ideal:.0f} req/s")  # fmt: skip
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
        f"{load[0]:.2f} at start, {load_end[0]:.2f} at end; median of {args.repeat} runs\n"
    )
    print(
        "| run | requests | seconds | achieved req/s | ideal req/s | ratio | client CPU/request "
        "| target |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        ratio = row.rate / ideal
        verdict = "ok" if ratio >= 0.9 else "below"
        print(
            f"| {row.label} | {row.requests} | {row.seconds:.2f} | {row.rate:.0f} | {ideal:.0f} "
            f"| {ratio:.0%} | {row.cpu_seconds / row.requests * 1000:.2f} ms | >= 90%: {verdict} |"
        )


if __name__ == "__main__":
    main()
