"""Red-team campaign throughput: a measurement, not a test. Prints a Markdown table.

Run::

    .venv/bin/python bench/redteam.py [--probes 2000] [--concurrency 32] [--latency 0.05]

A fake OpenAI-compatible endpoint (``charter.evaluation._loopback``: asyncio streams,
HTTP/1.1 keep-alive, ``TCP_NODELAY``) runs in its own process and answers every
``/v1/chat/completions`` after ``--latency`` seconds. A campaign of ``--probes``
probes (the ``charter-default`` pack, cycled) runs against it through
``OpenAITarget`` at ``--concurrency`` requests in flight, detectors included.
With latency L and concurrency C the ideal throughput is C/L (640 req/s for
C=32, L=50 ms); the target is at least 90% of it. The real round trip at
concurrency 1 is measured too (the server's timer overshoots and HTTP costs a
little), giving the ceiling actually reachable. A second row sends the same
requests without detectors, to separate transport cost from judging cost. Each
row is the median of ``--repeat`` runs; the client's CPU time per request is
printed too (it varies less than throughput on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.connection
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
    async def serve() -> None:
        server = LoopbackServer(delay=latency, reply=_reply)
        await server.start()
        ready.send(server.port)
        await asyncio.Event().wait()

    asyncio.run(serve())


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
    """``n`` probes: the default pack cycled, with unique ids."""
    pack = load_pack("charter-default")
    items = []
    for i in range(n):
        p = pack.probes[i % len(pack.probes)]
        probe = Probe(f"{p.id}#{i}", p.category, p.prompt, p.detector, p.system_hint, p.benign)
        items.append((pack.name, probe))
    return items


async def campaign(base_url: str, n: int, concurrency: int, judge: bool) -> Row:
    """One timed run: a campaign (``judge``) or the same requests without detectors."""
    target = OpenAITarget(base_url, "fake", concurrency=concurrency, retries=0, timeout=30)
    items = probes(n)
    planted = new_secrets()
    detectors = builtin_detectors()
    # Warm-up: open the connections before timing.
    await run_probes(
        target,
        items[:concurrency],
        system_prompt=DEFAULT_SYSTEM_PROMPT,
        planted=planted,
        detectors=detectors,
        concurrency=concurrency,
    )
    try:
        start, cpu = time.perf_counter(), time.process_time()
        if judge:
            outcomes = await run_probes(
                target,
                items,
                system_prompt=DEFAULT_SYSTEM_PROMPT,
                planted=planted,
                detectors=detectors,
                concurrency=concurrency,
            )
            assert len(outcomes) == n and all(o.error is None for o in outcomes)
        else:
            semaphore = asyncio.Semaphore(concurrency)

            async def send(prompt: str) -> str:
                async with semaphore:
                    return await target.chat([{"role": "user", "content": prompt}])

            await asyncio.gather(*(send(p.prompt) for _, p in items))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        await target.aclose()
    label = "campaign (OpenAITarget + detectors)" if judge else "transport only (OpenAITarget)"
    return Row(label, n, seconds, cpu)


async def round_trip(base_url: str, n: int = 40) -> float:
    """Median seconds of one request at concurrency 1: the latency the server really gives."""
    target = OpenAITarget(base_url, "fake", concurrency=1, retries=0)
    times = []
    try:
        for i in range(n + 1):
            start = time.perf_counter()
            await target.chat([{"role": "user", "content": f"ping {i}"}])
            times.append(time.perf_counter() - start)
    finally:
        await target.aclose()
    return sorted(times[1:])[n // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
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
        base_url = f"http://127.0.0.1:{parent.recv()}/v1"
        load = os.getloadavg()
        reachable = args.concurrency / asyncio.run(round_trip(base_url))
        rows = []
        for judge in (True, False):
            runs = [
                asyncio.run(campaign(base_url, args.probes, args.concurrency, judge))
                for _ in range(args.repeat)
            ]
            rows.append(sorted(runs, key=lambda r: r.seconds)[len(runs) // 2])
            spread = ", ".join(f"{r.rate:.0f}" for r in runs)
            print(f"{rows[-1].label}: runs at {spread} req/s", flush=True)
        load_end = os.getloadavg()
    finally:
        server.terminate()
        server.join()
    print(
        f"\nRed-team throughput: {args.probes} probes, C={args.concurrency}, "
        f"L={args.latency * 1000:.0f} ms, ideal C/L = {ideal:.0f} req/s; the round trip "
        f"measured at C=1 makes {reachable:.0f} req/s reachable"
    )
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
        f"{load[0]:.2f} at start, {load_end[0]:.2f} at end; median of {args.repeat} runs\n"
    )
    print(
        "| run | requests | seconds | achieved req/s | ideal C/L | ratio | vs reachable "
        "| client CPU/request | target >= 90% |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        ratio = row.rate / ideal
        verdict = "ok" if ratio >= 0.9 else "below"
        print(
            f"| {row.label} | {row.requests} | {row.seconds:.2f} | {row.rate:.0f} | {ideal:.0f} "
            f"| {ratio:.1%} | {row.rate / reachable:.1%} "
            f"| {row.cpu_seconds / row.requests * 1000:.2f} ms | {verdict} |"
        )


if __name__ == "__main__":
    main()
