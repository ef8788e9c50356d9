"""The comparison rows of ``compare_mlflow.py``: figures, ratios and the issue's goals.

MLflow runs in more than one configuration (its default of 4 uvicorn workers,
and 1 worker, which avoids a ~40 ms stall per request on keep-alive connections
that its multi-worker setup shows on this machine). Each row shows every
configuration; the ratio and the verdict compare Charter with the **best**
MLflow figure of that row, whichever configuration gave it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from _report import Report, fmt_mib, fmt_rate
from _scenario import MiB, Outcome, Sizes
from _workloads import Latency, Throughput, pct


@dataclass(frozen=True)
class Measure:
    """How to read, show and judge one row."""

    label: str
    value: Callable[[Outcome], float]  # the figure the ratio is taken on
    text: Callable[[Outcome], str]
    higher_is_better: bool
    goal: str = "—"
    judge: Callable[[float, Outcome], bool] | None = None  # (factor vs best MLflow, Charter)


def _row(rep: Report, m: Measure, mls: dict[str, Outcome], ch: Outcome | None) -> None:
    cells = [m.text(o) for o in mls.values()]
    factor = None
    if mls and ch is not None:
        values = [m.value(o) for o in mls.values()]
        best = max(values) if m.higher_is_better else min(values)
        mine = m.value(ch)
        factor = mine / best if m.higher_is_better else best / mine
    ratio = "—" if factor is None else f"{factor:,.1f}x"
    met = None
    if m.judge is not None and ch is not None and (factor is not None or not mls):
        met = m.judge(factor if factor is not None else 0.0, ch)
    rep.row(m.label, cells, "—" if ch is None else m.text(ch), ratio, m.goal, met)


def _throughput(o: Outcome, pick: str) -> Throughput:
    value = getattr(o, pick)
    assert isinstance(value, Throughput)
    return value


def _latency(o: Outcome, pick: str) -> Latency:
    value = getattr(o, pick)
    assert isinstance(value, Latency)
    return value


def _rate_text(t: Throughput) -> str:
    return f"{fmt_rate(t.rate)} (p95 {pct(t.latencies, 0.95) * 1e3:.1f} ms)"


def _throughput_measure(label: str, pick: str, goal: bool) -> Measure:
    return Measure(
        label,
        lambda o: _throughput(o, pick).rate,
        lambda o: _rate_text(_throughput(o, pick)),
        True,
        "Charter ≥ 5x" if goal else "—",
        (lambda f, _c: f >= 5) if goal else None,
    )


def _latency_measure(label: str, pick: str, goal: bool) -> Measure:
    return Measure(
        label,
        lambda o: _latency(o, pick).p95,
        lambda o: str(_latency(o, pick)),
        False,
        "Charter p95 ≤ 1/5 of MLflow's" if goal else "—",
        (lambda f, _c: f >= 5) if goal else None,
    )


def _memory_text(o: Outcome) -> str:
    m = o.idle_memory
    return f"{fmt_mib(m.rss)} RSS in {m.processes} proc. (PSS {fmt_mib(m.pss)})"


def measures(sizes: Sizes) -> list[Measure]:
    """Every comparison row, in order."""
    n, c = sizes.w1_versions, sizes.clients
    shape = f"{sizes.models} models x {sizes.per_model} versions"
    big = f"{sizes.big_bytes // MiB:,} MiB" if sizes.big_bytes < 1024 * MiB else "1 GiB"
    rows = [
        _throughput_measure(f"W1 register {n:,} versions, 1 client", "w1_solo", True),
        _throughput_measure(f"W1 register {n:,} versions, {c} client processes", "w1_multi", True),
        _throughput_measure(
            f"(population) register {sizes.models * sizes.per_model:,} versions, {c} clients",
            "populate",
            False,
        ),
        _latency_measure(f"W2 search versions of one model ({shape})", "search", True),
        _latency_measure("(extra) read one version", "lookup", False),
        _latency_measure("W3 set alias / stage", "alias_set", True),
        _latency_measure("W3 read alias / stage", "alias_get", True),
        Measure(
            f"cold start (median of {sizes.cold_starts}, populated database)",
            lambda o: o.cold_start,
            lambda o: f"{o.cold_start:.2f} s",
            False,
            "Charter ≤ 1 s",
            lambda _f, ch: ch.cold_start <= 1.0,
        ),
        Measure(
            "idle memory, whole process tree (ratio on RSS)",
            lambda o: float(o.idle_memory.rss),
            _memory_text,
            False,
            "Charter ≤ 1/10 of MLflow's",
            lambda f, _c: f >= 10,
        ),
    ]
    for what, pick, need in (("upload", "upload_mbps", 2.5), ("download", "download_mbps", 3.0)):
        rows.append(
            Measure(
                f"artifact {what}, {big} (best of {sizes.big_reps})",
                lambda o, p=pick: float(getattr(o, p)),
                lambda o, p=pick: f"{getattr(o, p):,.0f} MB/s",
                True,
                f"Charter ≥ {need}x",
                lambda f, _c, k=need: f >= k,
            )
        )
    return rows


def compare(rep: Report, sizes: Sizes, mls: dict[str, Outcome], ch: Outcome | None) -> None:
    """Add every comparison row and the notes that explain them."""
    rep.mlflow_columns = [f"MLflow, {label}" for label in mls] or ["MLflow"]
    for m in measures(sizes):
        _row(rep, m, mls, ch)
        if m.label.startswith("W1 register") and "client processes" in m.label:
            _publish_row(rep, sizes, mls, ch)
    _extra_notes(rep, sizes, mls, ch)


def _publish_row(rep: Report, sizes: Sizes, mls: dict[str, Outcome], ch: Outcome | None) -> None:
    if ch is None or "w1_publish" not in ch.extra:
        return
    pub: Throughput = ch.extra["w1_publish"]
    factor = None
    if mls:
        best = max(_throughput(o, "w1_solo").rate for o in mls.values())
        factor = pub.rate / best
    rep.row(
        f"(Charter only) register + publish {sizes.w1_versions:,} versions, 1 client",
        ["— (no publish step)" for _ in mls] or ["—"],
        _rate_text(pub),
        "—" if factor is None else f"{factor:,.1f}x MLflow's register",
        "—",
        None,
    )


def _extra_notes(rep: Report, sizes: Sizes, mls: dict[str, Outcome], ch: Outcome | None) -> None:
    """Notes: CPU per request, client-side hashing, retries, starts, MLflow's defaults."""
    everyone = [(f"MLflow, {k}", o) for k, o in mls.items()] + [("Charter", ch)]
    present = [(name, o) for name, o in everyone if o is not None]
    rep.note(
        "server CPU (user + system, whole process tree, from /proc) per W1 registration "
        "(1 client) and per W2 search: "
        + "; ".join(
            f"{name} {o.extra['w1_cpu_ms']:.1f} ms and {o.extra['search_cpu_ms']:.1f} ms"
            for name, o in present
        )
    )
    if ch is not None and "client_hash_s" in ch.extra:
        rep.note(
            f"Charter upload: the client hashes the file first (its digest names the blob): "
            f"{ch.extra['client_hash_s']:.2f} s for {sizes.big_bytes // MiB:,} MiB, not in "
            f"the upload row; with it, {ch.extra['upload_with_hash_mbps']:,.0f} MB/s end to end"
        )
    for name, out in present:
        runs = [out.w1_solo, out.w1_multi, out.populate, out.extra.get("w1_publish")]
        errors = [e for t in runs if t is not None for e in t.errors]
        if errors:
            rep.note(f"{name}: {len(errors)} error answers during registration, each retried")
        loaded = out.loaded_memory
        assert loaded is not None
        rep.note(
            f"{name}: first start on an empty database {out.first_start:.2f} s; cold starts "
            + ", ".join(f"{s:.2f}" for s in out.cold_starts)
            + f" s; memory after the population load (then idle {sizes.idle_settle_s:g} s): "
            f"{fmt_mib(loaded.rss)} RSS (PSS {fmt_mib(loaded.pss)}) in {loaded.processes} "
            "processes"
        )
    for label, out in mls.items():
        if "default_idle" not in out.extra:
            continue
        mem = out.extra["default_idle"]
        vs = "" if ch is None else f" ({mem.rss / ch.idle_memory.rss:,.1f}x Charter's)"
        rep.note(
            f"MLflow, {label}, exactly as `mlflow server` starts by default (job execution on: "
            "a job runner and its Huey consumers beside the web workers): cold start "
            + ", ".join(f"{s:.2f}" for s in out.extra["default_cold_starts"])
            + f" s; idle {fmt_mib(mem.rss)} RSS{vs} (PSS {fmt_mib(mem.pss)}) in "
            f"{mem.processes} processes. The table's MLflow columns run with job execution "
            "off (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false), the leaner baseline."
        )
