#!/usr/bin/env python3
"""Countersign benchmark: run through bench/run (which builds first).

Starts a private Postgres 15 and Kafka 4.1 broker on free 127.0.0.1 ports in
a temporary folder, the loopback provider (bench/provider.c), and for each
scenario an isolated deployment (own database cloned from a migrated template,
own topics, own processes). Scenarios (see bench/README.md):

  a  ingest     N requests through Kafka -> durable approvals (requests/s)
  b  exec       approved calls drained against the loopback provider (calls/s),
                and the latency Countersign adds at a moderate rate
  c  decide     decision -> provider call and decision -> long-poll client woken
  d  waiters    10k long-poll waiters on one api: RSS, time to wake them all
  e  sweep      expiry of 1M due approvals, decision latency before/during
  f  rss        RSS of api, workers, scheduler across 1M approvals
  pgbench       100-row INSERT ceiling on the same Postgres
  river         River's `river bench` on the same Postgres

Prints a table (figures, targets met/missed, machine details); --markdown FILE
also writes it as Markdown, --json FILE the raw figures.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import math
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import benchlib as bl
import httpx
from approver import Approver  # tests/integration (on sys.path through benchlib)
from console_bench import scenario_console
from benchlib import (BENCH_DIR, BUILD_DIR, REPO_ROOT, Deployment, HttpConn, Kafka, Postgres,
                      Progress, Provider, fmt_ms, fmt_rate, free_port, pct, say)

ALL = ["a", "pgbench", "b", "river", "c", "d", "e", "f", "g", "h"]
EXTRA = ["plans", "console"]   # run only when named in --only

TARGETS = {
    "ingest": 30_000.0,        # requests/s
    "exec": 5_000.0,           # calls/s
    "exec_vs_river": 1.0,      # ratio
    "decision_call_p99": 20.0,  # ms
    "decision_wake_p99": 50.0,  # ms
    "waiters_rss_mb": 150.0,   # MB
}


# ---------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------


class Results:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []
        self.raw: dict[str, Any] = {}
        self.notes: list[str] = []

    def add(self, section: str, metric: str, value: str, target: str = "", verdict: str = "") -> None:
        self.rows.append((section, metric, value, target, verdict))

    def table(self) -> str:
        head = ("scenario", "figure", "value", "target", "")
        rows = [head] + self.rows
        w = [max(len(r[i]) for r in rows) for i in range(5)]
        out = []
        for i, r in enumerate(rows):
            out.append("  ".join(c.ljust(w[k]) for k, c in enumerate(r)).rstrip())
            if i == 0:
                out.append("  ".join("-" * w[k] for k in range(5)))
        return "\n".join(out)

    def markdown(self) -> str:
        out = ["| scenario | figure | value | target | |", "|---|---|---|---|---|"]
        for r in self.rows:
            out.append("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |")
        return "\n".join(out)


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("MET" if ok else "MISSED")


# ---------------------------------------------------------------------------
# the run's context
# ---------------------------------------------------------------------------


class Ctx:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.logs = tmp / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pg: Postgres | None = None
        self.kafka: Kafka | None = None
        self.provider: Provider | None = None
        self.res = Results()
        self.deployments: list[Deployment] = []

    def deploy(self, name: str, **kw: Any) -> Deployment:
        assert self.pg and self.kafka and self.provider
        d = Deployment(name, self.pg, self.kafka, self.provider, self.logs, **kw)
        self.deployments.append(d)
        return d

    def undeploy(self, d: Deployment) -> None:
        d.close(drop=not self.args.keep)
        if d in self.deployments:
            self.deployments.remove(d)

    def postmaster(self) -> int:
        assert self.pg
        return int((self.pg.dir / "data" / "postmaster.pid").read_text().split()[0])

    def kafka_pid(self) -> int | None:
        assert self.kafka
        try:
            return int((self.kafka.dir / "kafka.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


class CpuMeter:
    """CPU seconds used by each part of the system between start() and stop()."""

    def __init__(self, ctx: Ctx, procs: dict[str, list[int]]) -> None:
        self.ctx = ctx
        self.procs = procs

    def _read(self) -> dict[str, float]:
        out = {name: sum(bl.cpu_seconds(p) for p in pids) for name, pids in self.procs.items()}
        out["postgres"] = bl.postgres_cpu(self.ctx.postmaster())
        kp = self.ctx.kafka_pid()
        out["kafka"] = bl.cpu_seconds(kp) if kp else 0.0
        if self.ctx.provider:
            out["provider"] = bl.cpu_seconds(self.ctx.provider.proc.pid)
        out["bench client"] = bl.cpu_seconds(os.getpid())
        out["machine"] = bl.machine_busy_seconds()
        return out

    def start(self) -> None:
        if self.ctx.args.pg_stats:
            pg_stats_reset(self.ctx)
        self.perf = None
        if self.ctx.args.perf:
            self.perf = perf_start(self.ctx, self.procs)
        self.t0 = time.monotonic()
        self.a = self._read()

    def stop(self) -> str:
        b = self._read()
        wall = time.monotonic() - self.t0
        self.last = {k: b[k] - self.a.get(k, 0.0) for k in b}
        ours = sum(v for k, v in self.last.items() if k != "machine")
        self.last["others on the machine"] = max(0.0, self.last["machine"] - ours)
        self.wall = wall
        parts = [f"{k} {v / wall * 100:.0f}%" for k, v in self.last.items() if k != "machine"]
        if self.ctx.args.pg_stats:
            self.statements = pg_stats_top(self.ctx, wall)
        if self.perf is not None:
            perf_stop(self.ctx, self.perf)
        return "CPU %% of one core over %.1fs: %s (machine busy %.0f%% of %d cores)" % (
            wall, ", ".join(parts), self.last["machine"] / wall / (os.cpu_count() or 1) * 100, os.cpu_count() or 1)


def perf_start(ctx: Ctx, procs: dict[str, list[int]]) -> tuple[subprocess.Popen[bytes], Path]:
    """perf record (cpu-clock, call graphs) of our processes and the Postgres backends."""
    pids = [p for ps in procs.values() for p in ps]
    pids += [ctx.postmaster()] + bl.children_of(ctx.postmaster())
    n = sum(1 for f in ctx.tmp.glob("perf-*.data"))
    out = ctx.tmp / f"perf-{n}.data"
    p = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g", "-o", str(out),
                          "-p", ",".join(str(x) for x in pids)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    return p, out


def perf_stop(ctx: Ctx, perf: tuple[subprocess.Popen[bytes], Path], top: int = 30) -> None:
    p, out = perf
    p.send_signal(signal.SIGINT)
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
    r = subprocess.run(["perf", "report", "-i", str(out), "--stdio", "--no-children", "-g", "none",
                        "--percent-limit", "0.4", "--sort", "comm,dso,sym"],
                       capture_output=True, text=True, timeout=300)
    lines = [ln for ln in r.stdout.splitlines() if ln.strip() and not ln.startswith("#")]
    say(f"    perf (self time, cpu-clock) of our processes and Postgres, {out}:")
    for ln in lines[:top]:
        say("    " + ln.rstrip())


def noise(ctx: Ctx, section: str, cpu: CpuMeter | None = None, last: dict[str, float] | None = None,
          wall: float = 0.0, what: str = "the measurement") -> None:
    """A table row saying how busy the rest of the machine was during the measurement."""
    if cpu is not None:
        last, wall = cpu.last, cpu.wall
    if not last or wall <= 0:
        return
    other = last.get("others on the machine", 0.0) / wall * 100
    busy = last.get("machine", 0.0) / wall / (os.cpu_count() or 1) * 100
    ctx.res.add(section, f"  other processes' CPU during {what}",
                f"{other:.0f}% of a core (machine {busy:.0f}% busy)")


def cpu_per_unit(last: dict[str, float], n: int) -> str:
    """CPU microseconds per unit of work of each part that used a measurable share
    (n units over the CpuMeter window `last`), and their sum."""
    skip = {"machine", "others on the machine", "bench client"}
    parts = {k: v / n * 1e6 for k, v in last.items() if k not in skip and n > 0 and v / n * 1e6 >= 0.5}
    return ", ".join(f"{k} {v:.0f} us" for k, v in parts.items()) + f"; all {sum(parts.values()):.0f} us"


_WAL_Q = ("SELECT (SELECT sum(xact_commit) FROM pg_stat_database)::float8, wal_records::float8, "
          "wal_bytes::float8, wal_write::float8, wal_sync::float8, wal_sync_time FROM pg_stat_wal")


def pg_stats_reset(ctx: Ctx) -> None:
    import psycopg

    assert ctx.pg
    with psycopg.connect(ctx.pg.url("postgres"), autocommit=True) as c:
        c.execute("SELECT pg_stat_statements_reset()")
        ctx.wal0 = c.execute(_WAL_Q).fetchone()  # type: ignore[attr-defined]


def pg_stats_top(ctx: Ctx, wall: float, n: int = 12) -> list[dict[str, Any]]:
    """The statements that took the most time since the reset (pg_stat_statements), printed."""
    import psycopg

    assert ctx.pg
    with psycopg.connect(ctx.pg.url("postgres"), autocommit=True) as c:
        rows = c.execute(
            "SELECT calls, total_exec_time + total_plan_time, "
            "(total_exec_time + total_plan_time) / greatest(calls, 1), plans, total_plan_time, "
            "rows, shared_blks_hit + shared_blks_read, "
            "wal_bytes, regexp_replace(query, '\\s+', ' ', 'g') FROM pg_stat_statements "
            "ORDER BY total_exec_time + total_plan_time DESC LIMIT %s", (n,)).fetchall()
        w1 = c.execute(_WAL_Q).fetchone()
    w0 = getattr(ctx, "wal0", None)
    if w0 and w1:
        dlt = [b - a for a, b in zip(w0, w1)]
        say(f"    Postgres over {wall:.1f}s: {dlt[0] / wall:.0f} commits/s, {dlt[4] / wall:.0f} WAL syncs/s "
            f"(mean {dlt[5] / max(dlt[4], 1):.2f} ms each), {dlt[2] / wall / 1e6:.1f} MB/s WAL, "
            f"{dlt[1] / wall:.0f} WAL records/s")
    out = []
    say(f"    pg_stat_statements, top {n} by total time over {wall:.1f}s "
        "(calls, total ms with planning, % of wall, mean ms, plans, planning ms, rows, blocks, "
        "WAL MB, query):")
    for calls, total, mean, plans, plan_ms, nrows, blks, wal, q in rows:
        out.append({"calls": calls, "total_ms": total, "mean_ms": mean, "plans": plans,
                    "plan_ms": plan_ms, "rows": nrows, "blocks": blks, "wal_bytes": int(wal),
                    "query": q[:300]})
        say(f"    {calls:>8} {total:>10.0f} {total / wall / 10:>5.1f}% {mean:>8.2f} {plans:>7} "
            f"{plan_ms:>8.0f} {nrows:>9} {blks:>10} {int(wal) / 1e6:>7.1f}  {q[:100]}")
    return out


# ---------------------------------------------------------------------------
# (a) ingest
# ---------------------------------------------------------------------------


def produce_transaction(d: Deployment, msgs: Any, n: int, tag: str,
                        prog: Progress | None = None) -> float:
    """Produces the n (key, value) pairs of msgs in one Kafka transaction; returns the wall
    time just before the commit (nothing is visible to the read_committed consumers before
    it: the last message becomes visible then)."""
    p = bl.producer_for(d.kafka, **{"transactional.id": f"{d.prefix}.bench.{tag}",
                                    "linger.ms": 20, "batch.size": 1_000_000,
                                    "transaction.timeout.ms": 600_000})
    p.init_transactions(60)
    p.begin_transaction()
    topic = d.topics["requests"]
    for i, (key, value) in enumerate(msgs):
        while True:
            try:
                p.produce(topic, key=key.encode(), value=value, headers=d.signed(value))
                break
            except BufferError:
                p.poll(0.05)
        if i % 20000 == 0:
            p.poll(0)
            if prog:
                prog.update(f"producing {i}/{n} in one transaction")
    p.flush(300)
    t = time.time()
    p.commit_transaction(120)
    return t


def ingest_run(ctx: Ctx, n: int, workers: int, batch: int, partitions: int) -> dict[str, Any]:
    label = f"a: ingest {workers}w/{partitions}p/batch {batch}"
    prog = Progress(label)
    d = ctx.deploy(f"ingest_{workers}w_{partitions}p_{batch}b", partitions=partitions,
                   CS_INGEST_BATCH=str(batch))
    try:
        d.setup("always")
        d.create_topics()
        for _ in range(workers):
            d.start_worker(wait=False)
        for w in d.workers:
            d.wait_worker(w)
        d.wait_group_stable(workers)
        tp = time.time()
        t0 = produce_transaction(d, ((f"in-{i}", d.envelope(f"in-{i}")) for i in range(n)), n, "in-",
                                 prog=prog)
        produce_rate = n / (t0 - tp)
        cpu = CpuMeter(ctx, {"workers": [w.pid for w in d.workers]})
        cpu.start()
        deadline = time.monotonic() + max(90.0, n / 1500.0) * ctx.args.timeout_mult
        stored = 0.0
        while time.monotonic() < deadline:
            stored = d.worker_sum("countersign_ingest_stored_total")
            el = time.time() - t0
            prog.update(f"{int(stored)}/{n} stored ({fmt_rate(stored / el if el > 0 else 0)}/s)")
            if stored >= n:
                break
            time.sleep(0.1)
        t1 = time.time()
        cpu_text = cpu.stop()
        count = d.one("SELECT count(*) FROM approvals WHERE request_id LIKE 'in-%%'")
        first = d.one("SELECT extract(epoch FROM min(created_at)) FROM approvals "
                      "WHERE request_id LIKE 'in-%%'")
        done = count >= n
        rate = count / (t1 - t0) if done else count / (t1 - t0)
        dlq = d.worker_sum("countersign_ingest_dead_lettered_total")
        hist = bl.hist_merge(d.worker_metrics(), "countersign_ingest_batch_seconds")
        out = {"n": n, "workers": workers, "partitions": partitions, "batch": batch,
               "stored": count, "complete": done, "seconds": t1 - t0, "rate": rate,
               "first_row_after_commit_s": (float(first) - t0) if first else None,
               "producer_rate": produce_rate, "dead_lettered": dlq,
               "batch_p50_ms": bl.hist_quantile(hist, "countersign_ingest_batch_seconds", 0.5) * 1000,
               "batch_p99_ms": bl.hist_quantile(hist, "countersign_ingest_batch_seconds", 0.99) * 1000,
               "cpu": cpu.last, "wall": cpu.wall}
        prog.done(f"{count}/{n} durable in {t1 - t0:.1f}s = {fmt_rate(rate)} req/s"
                  f"{'' if done else ' (TIMED OUT)'}; {cpu_text}")
        return out
    finally:
        ctx.undeploy(d)


def scenario_a(ctx: Ctx) -> None:
    a = ctx.args
    configs = [(1, 6, 1000), (2, 6, 1000)] if a.quick else [(1, 6, 1000), (2, 6, 1000), (2, 6, 5000)]
    if a.ingest_configs:
        configs = [tuple(int(x) for x in c.split("/")) for c in a.ingest_configs.split(",")]  # type: ignore[misc]
    runs = []
    for w, p, b in configs:
        runs.append(ingest_run(ctx, a.n, w, b, p))
    ctx.res.raw["ingest"] = runs
    for r in runs:
        ctx.res.add("(a) ingest", f"{r['workers']} worker(s), {r['partitions']} partitions, batch {r['batch']}",
                    f"{fmt_rate(r['rate'])} req/s" + ("" if r["complete"] else " (timed out)"))
        noise(ctx, "(a) ingest", last=r["cpu"], wall=r["wall"], what="that run")
    best = max(runs, key=lambda r: r["rate"])
    ctx.res.raw["ingest_best"] = best["rate"]
    ctx.res.add("(a) ingest", f"best, N={a.n} (requests/s until all durable)",
                f"{fmt_rate(best['rate'])} req/s", f">= {fmt_rate(TARGETS['ingest'])}/s",
                verdict(best["rate"] >= TARGETS["ingest"]))
    ctx.res.add("(a) ingest", "producer rate (one transaction, before t0)",
                f"{fmt_rate(best['producer_rate'])} msg/s")


# ---------------------------------------------------------------------------
# pgbench: the 100-row INSERT ceiling
# ---------------------------------------------------------------------------


def pgbench_bin() -> str:
    for p in ("/usr/lib/postgresql/15/bin/pgbench", shutil.which("pgbench") or ""):
        if p and os.path.exists(p):
            return p
    raise RuntimeError("pgbench not found (apt-get install postgresql-client)")


def scenario_pgbench(ctx: Ctx) -> None:
    a = ctx.args
    d = ctx.deploy("pgbench")
    prog = Progress("pgbench")
    try:
        d.setup("always")
        assert ctx.pg
        out = {}
        for script, label in (("pgbench_insert.sql", "approvals rows"),
                              ("pgbench_insert_full.sql", "approvals + audit rows + events")):
            prog.update(f"{script}: {a.pgbench_clients} clients for {a.pgbench_seconds}s", force=True)
            cmd = [pgbench_bin(), "-n", "-h", "127.0.0.1", "-p", str(ctx.pg.port), "-U", "cs",
                   "-c", str(a.pgbench_clients), "-j", str(min(2, a.pgbench_clients)),
                   "-T", str(a.pgbench_seconds), "-f", str(BENCH_DIR / script), d.db_name]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.pgbench_seconds + 120)
            m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", r.stdout)
            if r.returncode != 0 or not m:
                raise RuntimeError(f"pgbench failed: {r.stdout[-1500:]}{r.stderr[-1500:]}")
            out[script] = float(m.group(1)) * 100
            d.sql("TRUNCATE approval_requests, approval_states CASCADE")
        ctx.res.raw["pgbench"] = out
        ceiling = out["pgbench_insert.sql"]
        prog.done(f"100-row INSERTs: {fmt_rate(ceiling)} rows/s; with audit+events: "
                  f"{fmt_rate(out['pgbench_insert_full.sql'])} rows/s")
        ctx.res.add("pgbench", f"100-row INSERT of approvals rows ({a.pgbench_clients} clients)",
                    f"{fmt_rate(ceiling)} rows/s")
        ctx.res.add("pgbench", "same, plus the audit row and event of each approval",
                    f"{fmt_rate(out['pgbench_insert_full.sql'])} rows/s")
        if "ingest_best" in ctx.res.raw:
            ratio = ctx.res.raw["ingest_best"] / ceiling
            ctx.res.raw["ingest_vs_pgbench"] = ratio
            ctx.res.add("pgbench", "ingest (a) / pgbench ceiling", f"{ratio:.2f}x")
            ctx.res.add("pgbench", "ingest (a) / pgbench with audit+events",
                        f"{ctx.res.raw['ingest_best'] / out['pgbench_insert_full.sql']:.2f}x")
    finally:
        ctx.undeploy(d)


# ---------------------------------------------------------------------------
# (b) execution
# ---------------------------------------------------------------------------


def load_rows(d: Deployment, template: str, prefix: str, n: int, status: str, prog: Progress,
              expires: str = "now() + interval '1 hour'", chunk: int = 50_000) -> None:
    done = 0
    while done < n:
        hi = min(n, done + chunk)
        d.clone(template, prefix, done, hi - 1, status, expires)
        done = hi
        prog.update(f"loading {done}/{n} {status} rows")


def exec_drain(ctx: Ctx, m: int, workers: int, conc: int, claim: int) -> dict[str, Any]:
    label = f"b: drain {workers}w conc {conc} claim {claim}"
    prog = Progress(label)
    d = ctx.deploy(f"exec_{workers}w_{conc}c_{claim}", CS_EXEC_CONCURRENCY=str(conc),
                   CS_EXEC_CLAIM_BATCH=str(claim))
    assert ctx.provider
    try:
        d.setup("never", idempotency_keys=True)
        d.create_topics()
        d.start_worker()
        tid = d.template_row()
        bl.wait_for(lambda: d.one("SELECT status FROM approvals WHERE id = %s", tid) == "executed",
                    30, what="the template call to execute")
        d.stop_workers()
        load_rows(d, tid, "ex-", m, "approved", prog)
        d.sql("VACUUM ANALYZE approval_requests, approval_states")
        ctx.provider.reset(record=False)
        for _ in range(workers):
            d.start_worker(wait=False)
        cpu = CpuMeter(ctx, {"workers": [w.pid for w in d.workers]})
        cpu.start()
        t_start = time.time()
        deadline = time.monotonic() + max(90.0, m / 500.0) * ctx.args.timeout_mult
        finished = 0.0
        while time.monotonic() < deadline:
            finished = (d.worker_sum("countersign_executions_executed_total")
                        + d.worker_sum("countersign_executions_failed_total"))
            calls, first, _ = ctx.provider.stats()
            el = time.time() - first / 1e6 if first else 0
            prog.update(f"{int(finished)}/{m} finished, provider got {calls} "
                        f"({fmt_rate(calls / el if el > 0 else 0)}/s)")
            if finished >= m:
                break
            time.sleep(0.1)
        # The executor counts a call when it finishes; its outcome is written
        # asynchronously just after. Durable means in Postgres.
        while time.monotonic() < deadline and d.one(
                "SELECT count(*) FROM approvals WHERE request_id LIKE 'ex-%%' "
                "AND status IN ('executed', 'failed')") < m:
            time.sleep(0.05)
        t_end = time.time()
        cpu_text = cpu.stop()
        calls, first_us, last_us = ctx.provider.stats()
        executed = d.one("SELECT count(*) FROM approvals WHERE request_id LIKE 'ex-%%' "
                         "AND status = 'executed'")
        failed = d.one("SELECT count(*) FROM approvals WHERE request_id LIKE 'ex-%%' "
                       "AND status = 'failed'")
        span = (last_us - first_us) / 1e6 if calls > 1 else math.nan
        call_rate = calls / span if span and span > 0 else math.nan
        durable_rate = executed / (t_end - first_us / 1e6) if first_us else math.nan
        mets = d.worker_metrics()
        retries = sum(m.get("countersign_execution_retries_total", 0) for m in mets)
        attempts = dict(d.sql("SELECT attempts, count(*) FROM approvals WHERE request_id LIKE 'ex-%%' "
                              "GROUP BY 1 ORDER BY 1"))
        hist = bl.hist_merge(mets, "countersign_execution_seconds")
        out = {"m": m, "workers": workers, "concurrency": conc, "claim_batch": claim,
               "executed": executed, "failed": failed, "provider_calls": calls,
               "call_rate": call_rate, "durable_rate": durable_rate,
               "startup_to_first_call_s": first_us / 1e6 - t_start if first_us else None,
               "exec_p50_ms": bl.hist_quantile(hist, "countersign_execution_seconds", 0.5) * 1000,
               "exec_p99_ms": bl.hist_quantile(hist, "countersign_execution_seconds", 0.99) * 1000,
               "complete": executed + failed >= m, "cpu": cpu.last, "wall": cpu.wall,
               "retries": retries, "attempts": attempts}
        prog.done(f"{executed} executed, {failed} failed, {int(retries)} retries (attempts {attempts}); "
                  f"provider {fmt_rate(call_rate)} calls/s, "
                  f"durable {fmt_rate(durable_rate)}/s; {cpu_text}")
        return out
    finally:
        ctx.undeploy(d)


def exec_latency(ctx: Ctx, rate: float, seconds: float, workers: int) -> dict[str, Any]:
    """Auto-approved requests through Kafka at a fixed rate: decided_at -> provider arrival."""
    prog = Progress(f"b: latency at {rate:.0f}/s")
    d = ctx.deploy(f"exec_lat_{workers}w")
    assert ctx.provider
    try:
        d.setup("never", idempotency_keys=True)
        d.create_topics()
        for _ in range(workers):
            d.start_worker(wait=False)
        for w in d.workers:
            d.wait_worker(w)
        d.wait_group_stable(workers)
        tid = d.template_row()
        bl.wait_for(lambda: d.one("SELECT status FROM approvals WHERE id = %s", tid) == "executed",
                    30, what="the template call to execute")
        before = bl.hist_merge(d.worker_metrics(), "countersign_decision_to_call_seconds")
        ctx.provider.reset(record=True)
        p = bl.producer_for(d.kafka, **{"linger.ms": 1})
        n = int(rate * seconds)
        t0 = time.monotonic()
        step = 0.01
        for i in range(n):
            due = t0 + i / rate
            now = time.monotonic()
            if due > now:
                p.poll(0)
                time.sleep(max(0.0, min(step, due - now)))
            rid = f"lat-{i}"
            value = d.envelope(rid)
            p.produce(d.topics["requests"], key=rid.encode(), value=value, headers=d.signed(value))
            if i % 1000 == 0:
                prog.update(f"produced {i}/{n}")
        p.flush(30)
        bl.wait_for(lambda: d.worker_sum("countersign_executions_executed_total")
                    + d.worker_sum("countersign_executions_failed_total") >= n + 1,
                    60 + n / 200, interval=0.2, what="the paced calls to finish")
        arrivals = ctx.provider.arrivals()
        rows = d.sql("SELECT id::text, extract(epoch FROM decided_at)::float8, "
                     "extract(epoch FROM created_at)::float8 FROM approvals "
                     "WHERE request_id LIKE 'lat-%%'")
        lat = [(arrivals[i] / 1e6 - dec) * 1000 for i, dec, _ in rows if i in arrivals]
        after = bl.hist_merge(d.worker_metrics(), "countersign_decision_to_call_seconds")
        h = bl.hist_diff(after, before, "countersign_decision_to_call_seconds")
        out = {"rate": rate, "n": n, "matched": len(lat), "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99),
               "max_ms": max(lat) if lat else math.nan,
               "metric_p50_ms": bl.hist_quantile(h, "countersign_decision_to_call_seconds", 0.5) * 1000,
               "metric_p99_ms": bl.hist_quantile(h, "countersign_decision_to_call_seconds", 0.99) * 1000}
        prog.done(f"{len(lat)}/{n} matched: decided_at -> provider p50 {fmt_ms(out['p50_ms'])}, "
                  f"p99 {fmt_ms(out['p99_ms'])} (worker histogram p50 {fmt_ms(out['metric_p50_ms'])}, "
                  f"p99 {fmt_ms(out['metric_p99_ms'])})")
        return out
    finally:
        ctx.provider.reset(record=False)
        ctx.undeploy(d)


def scenario_b(ctx: Ctx) -> None:
    a = ctx.args
    configs = [(1, 256, 100), (2, 256, 100)] if a.quick else [(1, 256, 100), (2, 256, 100), (2, 512, 500)]
    if a.exec_configs:
        configs = [tuple(int(x) for x in c.split("/")) for c in a.exec_configs.split(",")]  # type: ignore[misc]
    runs = [exec_drain(ctx, a.m, w, c, k) for w, c, k in configs]
    ctx.res.raw["exec"] = runs
    for r in runs:
        ctx.res.add("(b) execution", f"{r['workers']} worker(s), concurrency {r['concurrency']}, "
                    f"claim {r['claim_batch']}",
                    f"{fmt_rate(r['call_rate'])} calls/s (durable {fmt_rate(r['durable_rate'])}/s)"
                    + ("" if r["complete"] else " (timed out)"))
        ctx.res.add("(b) execution", "  failed / retried attempts; call time (worker histogram) p50 / p99",
                    f"{r['failed']} / {int(r['retries'])}; {fmt_ms(r['exec_p50_ms'])} / {fmt_ms(r['exec_p99_ms'])}")
        noise(ctx, "(b) execution", last=r["cpu"], wall=r["wall"], what="that run")
    best = max(runs, key=lambda r: r["call_rate"] if r["call_rate"] == r["call_rate"] else 0)
    ctx.res.raw["exec_best"] = best["call_rate"]
    if best.get("cpu") and best["executed"]:
        ctx.res.add("(b) execution", "  CPU per executed call, best configuration",
                    cpu_per_unit(best["cpu"], best["executed"]))
    ctx.res.add("(b) execution", f"best, M={a.m} approved calls drained (provider-side)",
                f"{fmt_rate(best['call_rate'])} calls/s", f">= {fmt_rate(TARGETS['exec'])}/s",
                verdict(best["call_rate"] >= TARGETS["exec"]))
    rate = a.latency_rate
    if not rate:
        # a moderate load: a quarter of what one worker drained, so queueing does not dominate
        one = [r["call_rate"] for r in runs if r["workers"] == 1 and r["call_rate"] == r["call_rate"]]
        rate = max(50.0, min(2000.0, round(0.25 * (one[0] if one else 1000.0), -1)))
    lat = exec_latency(ctx, rate, a.latency_seconds, 1)
    ctx.res.raw["exec_latency"] = lat
    ctx.res.add("(b) execution", f"decided_at -> provider receives, {rate:.0f}/s via Kafka, 1 worker",
                f"p50 {fmt_ms(lat['p50_ms'])}, p99 {fmt_ms(lat['p99_ms'])}")
    ctx.res.add("(b) execution", "worker histogram decision_to_call (same run)",
                f"p50 {fmt_ms(lat['metric_p50_ms'])}, p99 {fmt_ms(lat['metric_p99_ms'])}")


# ---------------------------------------------------------------------------
# (g) a batch of 10k members: seal -> decidable, decision commit, execution
# ---------------------------------------------------------------------------


def batch_decided(ctx: Ctx, d: Deployment, bid: str, n: int,
                  prog: Progress) -> tuple[float, float, float, float]:
    """Produces a batch of n members with its seal in the middle in one Kafka transaction,
    waits until it is decidable, and approves it as a browser does (sign-in link, page,
    form POST). Returns (seconds from the commit to decidable, page GET s, decision POST s,
    wall time of the POST)."""
    msgs = [(f"{bid}-{i}", d.envelope(f"{bid}-{i}", 100 + i % 900, bid)) for i in range(n)]
    msgs.insert(n // 2, (bid, d.seal(bid, n)))   # the seal arrives among the members
    t0 = produce_transaction(d, msgs, n + 1, bid, prog)
    deadline = time.monotonic() + 120 * ctx.args.timeout_mult
    row: tuple[Any, ...] = ()
    while time.monotonic() < deadline:
        rows = d.sql("SELECT status, members, extract(epoch FROM decidable_at) FROM batches "
                     "WHERE id = %s", bid)
        row = rows[0] if rows else ()
        prog.update(f"{row[1] if row else 0}/{n} members stored ({row[0] if row else 'no batch yet'})")
        if row and row[0] == "decidable":
            break
        time.sleep(0.02)
    if not row or row[0] != "decidable":
        raise RuntimeError(f"batch not decidable within the deadline: {row}")
    # The approver signs in with the one-time link of `batch links` (one POST: the
    # session cookie and the batch page), then opens the page and decides there.
    with Approver() as person:
        person.http.timeout = httpx.Timeout(120.0)
        page = person.sign_in(d.batch_link(bid))
        tg = time.monotonic()
        form = person.form(page)           # GET the page (first page of items), read its form
        page_s = time.monotonic() - tg
        td = time.time()
        r = person.post(page, {**form, "decision": "approve", "reason": "bench"})
        post_s = time.time() - td
    if r.status_code != 200:
        raise RuntimeError(f"batch decision: HTTP {r.status_code}: {r.text[:200]}")
    return float(row[2]) - t0, page_s, post_s, td


def scenario_g(ctx: Ctx) -> None:
    """Issue 8's batch figures: a batch of --batch-members members produced with its seal
    (seal in the middle, members on every partition); then the approver signs in, and the
    batch page, the decision POST as a browser sends it, and the members' execution through
    the worker pool."""
    a = ctx.args
    n = a.batch_members
    prog = Progress(f"g: batch of {n}")
    d = ctx.deploy("batch", partitions=6)
    try:
        d.setup("always", amount_field="amount")
        d.create_topics()
        api = d.start_api()
        d.start_workers(2)
        d.start_scheduler()
        bid = f"bench-{n}"
        cpu = CpuMeter(ctx, {"workers": [w.pid for w in d.workers], "api": [api.pid]})
        cpu.start()
        decidable_s, page_s, post_s, td = batch_decided(ctx, d, bid, n, prog)
        decided_at = float(d.one("SELECT extract(epoch FROM decided_at) FROM batches WHERE id = %s", bid))
        prog.update("executing the members")
        deadline = time.monotonic() + max(120.0, n / 200.0) * a.timeout_mult
        done = 0
        while time.monotonic() < deadline:
            done = int(d.one("SELECT count(*) FROM approvals WHERE batch_id = %s AND status IN "
                             "('executed', 'failed')", bid))
            prog.update(f"{done}/{n} members executed")
            if done >= n:
                break
            time.sleep(0.1)
        first, last = d.sql("SELECT extract(epoch FROM min(executed_at)), extract(epoch FROM max(executed_at)) "
                            "FROM approvals WHERE batch_id = %s", bid)[0]
        failed = int(d.one("SELECT count(*) FROM approvals WHERE batch_id = %s AND status = 'failed'", bid))
        span = float(last) - decided_at if last else float("nan")
        rate = done / span if span and span > 0 else float("nan")
        out = {"members": n, "decidable_after_s": decidable_s, "page_s": page_s, "post_s": post_s,
               "decision_commit_s": decided_at - td, "executed": done, "failed": failed,
               "first_call_after_decision_s": float(first) - decided_at if first else None,
               "exec_rate": rate}
        ctx.res.raw["batch"] = out
        prog.done(f"decidable {decidable_s:.2f}s after the last member; decision POST {post_s:.2f}s; "
                  f"{done}/{n} executed at {fmt_rate(rate)}/s")
        sec = "(g) batch"
        ctx.res.add(sec, f"{n} members + seal produced -> batch decidable", f"{decidable_s:.2f} s",
                    "<= 2 s", verdict(decidable_s <= 2.0))
        ctx.res.add(sec, "approver's batch page (GET, first page of items)", f"{page_s * 1000:.0f} ms")
        ctx.res.add(sec, "decision POST answered (every member's transition committed)",
                    f"{post_s:.2f} s", "<= 1 s", verdict(post_s <= 1.0))
        exec_best = ctx.res.raw.get("exec_best")
        ratio = f" ({rate / exec_best:.2f}x (b)'s best)" if exec_best else ""
        ctx.res.add(sec, "members executed after the decision (2 workers)",
                    f"{fmt_rate(rate)} calls/s{ratio}; {failed} failed"
                    + ("" if done >= n else f" (TIMED OUT at {done})"))
        cpu.stop()
        noise(ctx, sec, cpu, what="the scenario")
    finally:
        ctx.undeploy(d)


def limited_flow(ctx: Ctx, d: Deployment, bid: str, seen: list[Any],
                 decided_at: float) -> dict[str, Any]:
    """Where (h)'s time goes: the provider's own arrivals per second and in its busiest
    windows, each claim (one statement: the audit entries of one transaction) and the
    time from a call's claim to its arrival at the provider (joined by Idempotency-Key).
    Writes the raw rows to logs/limited-*.tsv and returns the summary."""
    out: dict[str, Any] = {}
    arr = sorted((r.time, r.status, r.headers.get("idempotency-key", "")) for r in seen)
    with open(ctx.logs / "limited-arrivals.tsv", "w") as f:
        for t, st, key in arr:
            f.write(f"{t - decided_at:.4f}\t{st}\t{key}\n")
    if not arr:
        return out
    t0 = arr[0][0]
    per_s: dict[int, list[int]] = {}
    for t, st, _ in arr:
        c = per_s.setdefault(int(t - t0), [0, 0])
        c[0 if st == 200 else 1] += 1
    secs = [per_s.get(i, [0, 0]) for i in range(int(arr[-1][0] - t0) + 1)]
    out["per_second_200"] = [c[0] for c in secs]
    out["per_second_429"] = [c[1] for c in secs]
    out["seconds_with_429"] = sum(1 for c in secs if c[1])
    out["seconds_without_200"] = sum(1 for c in secs if not c[0])
    times = [t for t, _, _ in arr]
    for w in (0.01, 0.1, 1.0):   # most arrivals in any window of w seconds
        j, best = 0, 0
        for i, t in enumerate(times):
            while times[j] < t - w:
                j += 1
            best = max(best, i - j + 1)
        out[f"max_arrivals_in_{int(w * 1000)}ms"] = best
    claims = d.sql(
        "SELECT extract(epoch FROM min(au.at)), extract(epoch FROM max(au.at)), au.actor, count(*) "
        "FROM audit au JOIN approvals a ON a.id = au.approval_id WHERE a.batch_id = %s "
        "AND au.action = 'approval.executing' GROUP BY au.txid, au.actor ORDER BY 1", bid)
    with open(ctx.logs / "limited-claims.tsv", "w") as f:
        for lo, hi, actor, k in claims:
            f.write(f"{float(lo) - decided_at:.4f}\t{float(hi) - float(lo):.4f}\t{actor}\t{k}\n")
    sizes = [int(c[3]) for c in claims]
    gaps = [float(b[0]) - float(a[0]) for a, b in zip(claims, claims[1:])]
    out["claims"] = len(claims)
    out["claim_size_p50_max"] = [pct(sizes, 50), max(sizes)] if sizes else None
    out["claim_gap_ms_p50_p99_max"] = ([pct(gaps, 50) * 1000, pct(gaps, 99) * 1000, max(gaps) * 1000]
                                       if gaps else None)
    at = d.sql("SELECT 'countersign-' || au.approval_id::text, (au.detail->>'attempt')::int, "
               "extract(epoch FROM au.at) FROM audit au JOIN approvals a ON a.id = au.approval_id "
               "WHERE a.batch_id = %s AND au.action = 'approval.executing' ORDER BY 3", bid)
    claimed: dict[str, list[float]] = {}
    for key, _, t in at:
        claimed.setdefault(key, []).append(float(t))
    lag, nth = [], {}  # k-th arrival of a key <- its k-th claim
    for t, _, key in arr:
        k = nth[key] = nth.get(key, -1) + 1
        if key in claimed and k < len(claimed[key]):
            lag.append(t - claimed[key][k])
    if lag:
        out["claim_to_arrival_ms_p50_p99_max"] = [pct(lag, 50) * 1000, pct(lag, 99) * 1000,
                                                  max(lag) * 1000]
    say("h: flow: " + json.dumps({k: v for k, v in out.items() if not k.startswith("per_second")}))
    return out


def scenario_h(ctx: Ctx) -> None:
    """Issue 14: a batch of --limited-members (10 000) against a provider that allows
    --limited-rate calls/s (100; burst 10) and answers 429 + Retry-After: 1 beyond
    (the tests' stub provider in its rate-limit mode). The grant is set a little under
    the provider's limit (--rate 0.9x, burst 10), 2 workers. Reports the drain time from
    the decision to the last outcome, the rate the provider saw, its 429s, and failures."""
    from services import StubProvider   # tests/integration: the stub with a token bucket
    a = ctx.args
    n, limit = a.limited_members, a.limited_rate
    prog = Progress(f"h: batch of {n} vs a {limit:.0f} calls/s provider")
    stub = StubProvider()
    stub.rate_limit("/", rate=limit, burst=10, retry_after=1)
    assert ctx.pg and ctx.kafka
    d = Deployment("limited", ctx.pg, ctx.kafka, stub, ctx.logs, partitions=6)  # type: ignore[arg-type]
    ctx.deployments.append(d)
    try:
        d.setup("always", amount_field="amount")
        d.cli("grant", "set", "stripe", "--policy", "pay", "--agents", "bot1", "--secret-stdin",
              "--allow", stub.url, "--idempotency-keys", "--rate", f"{limit * 0.9:g}/s",
              "--burst", str(a.limited_burst), input="sk_bench_" + secrets.token_hex(12) + "\n")
        d.create_topics()
        d.start_api()
        if os.environ.get("CS_BENCH_H_LOG_LEVEL"):   # e.g. debug: every claim in the workers' logs
            d.env["CS_LOG_LEVEL"] = os.environ["CS_BENCH_H_LOG_LEVEL"]
        d.start_workers(2)
        d.start_scheduler()
        bid = f"limited-{n}"
        _, _, _, td = batch_decided(ctx, d, bid, n, prog)
        decided_at = float(d.one("SELECT extract(epoch FROM decided_at) FROM batches WHERE id = %s", bid))
        deadline = time.monotonic() + (n / limit * 3 + 120) * a.timeout_mult
        done = 0
        while time.monotonic() < deadline and done < n:
            done = int(d.one("SELECT count(*) FROM approvals WHERE batch_id = %s AND status IN "
                             "('executed', 'failed')", bid))
            prog.update(f"{done}/{n} members done")
            time.sleep(0.5)
        last = float(d.one("SELECT extract(epoch FROM max(executed_at)) FROM approvals "
                           "WHERE batch_id = %s", bid) or "nan")
        failed = int(d.one("SELECT count(*) FROM approvals WHERE batch_id = %s AND "
                           "(status = 'failed' OR response_status <> 200)", bid))
        seen = stub.requests()
        flow = limited_flow(ctx, d, bid, seen, decided_at)
        throttled = sum(1 for r in seen if r.status == 429)
        ok = sorted(r.time for r in seen if r.status == 200)
        provider_rate = (len(ok) - 1) / (ok[-1] - ok[0]) if len(ok) > 1 else float("nan")
        drain = last - decided_at
        ctx.res.raw["limited"] = {"members": n, "provider_rate": limit, "executed": done,
                                  "failed": failed, "drain_s": drain, "answered_429": throttled,
                                  "observed_rate": provider_rate, "decision_post_s": time.time() - td,
                                  "flow": flow}
        prog.done(f"{done}/{n} in {drain:.1f} s, {failed} failed, {throttled} answered 429, "
                  f"{provider_rate:.1f} calls/s at the provider")
        sec = "(h) rate-limited provider"
        ideal = n / limit
        ctx.res.add(sec, f"{n}-member batch vs a {limit:.0f} calls/s provider: decision -> last outcome",
                    f"{drain:.1f} s ({failed} failed)", f"~{ideal:.0f} s, 0 failed",
                    verdict(failed == 0 and done >= n and drain <= ideal * 1.25))
        ctx.res.add(sec, "rate the provider saw (200s) / 429s it answered",
                    f"{provider_rate:.1f} calls/s / {throttled}")
    finally:
        ctx.undeploy(d)
        stub.close()


# ---------------------------------------------------------------------------
# River
# ---------------------------------------------------------------------------


def scenario_river(ctx: Ctx) -> None:
    a = ctx.args
    prog = Progress("river")
    assert ctx.pg
    try:
        path = subprocess.run([str(BENCH_DIR / "river.sh"), "path"], capture_output=True, text=True,
                              timeout=900)
    except subprocess.TimeoutExpired:
        path = None
    if not path or path.returncode != 0:
        prog.done("River unavailable: " + (path.stderr[-500:] if path else "build timed out"))
        ctx.res.add("river", "river bench", "not run (see log)")
        return
    river = path.stdout.strip().splitlines()[-1]
    ctx.pg.drop_database("river_bench")
    url = ctx.pg.create_database("river_bench").replace("postgresql://", "postgres://")
    try:
        subprocess.run([river, "migrate-up", "--database-url", url], check=True, capture_output=True,
                       timeout=120)
        n = a.river_jobs
        prog.update(f"river bench -n {n} (insert, then work them all)", force=True)
        # River's own CPU: this process's reaped children's, around the run (the
        # process is gone when it ends, so /proc cannot be read then).
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = CpuMeter(ctx, {})
        cpu.start()
        r = subprocess.run([river, "bench", "--database-url", url, "-n", str(n)], capture_output=True,
                           text=True, timeout=600)
        cpu.stop()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.last["river"] = (after.ru_utime + after.ru_stime) - (kids.ru_utime + kids.ru_stime)
        text = r.stdout + r.stderr
        m = re.search(r"overall job/sec \[\s*([0-9.]+)\s*\]", text)
        if not m:
            raise RuntimeError(f"river bench output not understood: {text[-1500:]}")
        rate = float(m.group(1))
        ctx.res.raw["river"] = {"jobs": n, "rate": rate}
        prog.done(f"{fmt_rate(rate)} jobs/s worked ({n} jobs)")
        ctx.res.add("river", f"river bench -n {n} (v0.47.0, no-op jobs)", f"{fmt_rate(rate)} jobs/s")
        ctx.res.raw["river"]["cpu"] = cpu.last
        ctx.res.add("river", "  CPU per job, its insert and its work", cpu_per_unit(cpu.last, n))
        if "exec_best" in ctx.res.raw:
            ratio = ctx.res.raw["exec_best"] / rate
            ctx.res.raw["exec_vs_river"] = ratio
            ctx.res.add("river", "execution (b) / River", f"{ratio:.2f}x",
                        f">= {TARGETS['exec_vs_river']:.1f}x", verdict(ratio >= TARGETS["exec_vs_river"]))
    finally:
        ctx.pg.drop_database("river_bench")


# ---------------------------------------------------------------------------
# (c) decision -> call, decision -> wake
# ---------------------------------------------------------------------------


async def decide_loop(d: Deployment, ids: list[str], concurrency: int, prog: Progress,
                      pace: float | None = None, stop: Callable[[], bool] | None = None,
                      wait: bool = True) -> list[dict[str, Any]]:
    """Decides `ids` (approve as alice through the admin API). With wait, each decision
    has a long-poll waiter on its result opened just before. Closed loop with
    `concurrency` deciders, or open loop at `pace` decisions/s (concurrency = connections)."""
    assert d.api_proc and d.api_proc.url
    port = int(d.api_proc.url.rsplit(":", 1)[1])
    admin_h = {"Authorization": f"Bearer {d.admin_token}", "Content-Type": "application/json"}
    agent_h = {"Authorization": f"Bearer {d.api_key}"}
    body = b'{"approver":"alice","decision":"approve","reason":"bench"}'
    out: list[dict[str, Any]] = []
    it = iter(ids)
    done = 0
    t_start = time.monotonic()

    async def one(admin: HttpConn, waiter: HttpConn | None, aid: str) -> None:
        nonlocal done
        rec: dict[str, Any] = {"id": aid}
        if waiter is not None:
            await waiter.send("GET", f"/v1/approvals/{aid}/result?wait=60", agent_h)
            await asyncio.sleep(0.005)  # let the api suspend it
        rec["t0"] = time.time()
        st, _ = await admin.request("POST", f"/v1/admin/approvals/{aid}/decide", admin_h, body)
        rec["t_decided"] = time.time()
        rec["status"] = st
        if waiter is not None:
            st2, _ = await waiter.receive()
            rec["t_woken"] = time.time()
            rec["wake_status"] = st2
        out.append(rec)
        done += 1
        el = time.monotonic() - t_start
        prog.update(f"{done}/{len(ids)} decisions ({done / el:.0f}/s)")

    async def closed(_: int) -> None:
        admin, waiter = HttpConn("127.0.0.1", port), (HttpConn("127.0.0.1", port) if wait else None)
        for aid in it:
            if stop and stop():
                break
            await one(admin, waiter, aid)
        await admin.close()
        if waiter:
            await waiter.close()

    if pace is None:
        await asyncio.gather(*(closed(k) for k in range(concurrency)))
        return out

    # open loop: one decision every 1/pace s on a free connection from a pool
    pool: asyncio.Queue[HttpConn] = asyncio.Queue()
    for _ in range(concurrency):
        pool.put_nowait(HttpConn("127.0.0.1", port))
    tasks = []
    t0 = time.monotonic()
    k = 0

    async def paced(aid: str) -> None:
        c = await pool.get()
        try:
            await one(c, None, aid)
        finally:
            pool.put_nowait(c)

    for aid in ids:
        if stop and stop():
            break
        due = t0 + k / pace
        k += 1
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
        tasks.append(asyncio.create_task(paced(aid)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        await pool.get_nowait().close()
    return out


def decision_figures(recs: list[dict[str, Any]], arrivals: dict[str, int]) -> dict[str, Any]:
    ok = [r for r in recs if r["status"] == 200]
    call = [(arrivals[r["id"]] / 1e6 - r["t0"]) * 1000 for r in ok if r["id"] in arrivals]
    api = [(r["t_decided"] - r["t0"]) * 1000 for r in ok]
    wake = [(r["t_woken"] - r["t0"]) * 1000 for r in ok if "t_woken" in r]
    wake_ok = sum(1 for r in ok if r.get("wake_status") == 200)
    # What the others got (a status, or none): a lost wake-up shows here.
    other = collections.Counter(str(r.get("wake_status")) for r in recs
                                if "wake_status" in r and (r["status"] != 200 or r["wake_status"] != 200))
    return {"decisions": len(recs), "ok": len(ok), "calls_matched": len(call), "woken_200": wake_ok,
            "woken_other": dict(other), "decided_other": dict(collections.Counter(
                str(r["status"]) for r in recs if r["status"] != 200)),
            "api_p50_ms": pct(api, 50), "api_p99_ms": pct(api, 99),
            "call_p50_ms": pct(call, 50), "call_p99_ms": pct(call, 99),
            "wake_p50_ms": pct(wake, 50), "wake_p99_ms": pct(wake, 99)}


def breakdown(d: Deployment, recs: list[dict[str, Any]], arrivals: dict[str, int]) -> dict[str, Any]:
    """Where the time of each decision goes, from the audit entries' timestamps
    (clock_timestamp() inside each statement) and the client's and provider's clocks
    (all on this machine): p50/p99 of each step in ms."""
    ok = {r["id"]: r for r in recs if r["status"] == 200 and "t_woken" in r}
    if not ok:
        return {}
    rows = d.sql("SELECT approval_id::text, action, extract(epoch FROM at)::float8 FROM audit "
                 "WHERE approval_id = ANY(%s::uuid[]) AND action IN ('vote.approve', 'approval.approved', "
                 "'approval.executing', 'approval.executed')", list(ok))
    at: dict[str, dict[str, float]] = {}
    for aid, action, t in rows:
        at.setdefault(aid, {})[action] = t
    steps: dict[str, list[float]] = {k: [] for k in (
        "request -> vote inserted", "vote -> approval decided (UPDATE)",
        "decided -> claimed by the executor", "claimed -> provider receives",
        "provider receives -> outcome recorded", "outcome recorded -> client woken")}
    for aid, r in ok.items():
        a = at.get(aid, {})
        if len(a) < 4 or aid not in arrivals:
            continue
        arr = arrivals[aid] / 1e6
        seq = [r["t0"], a["vote.approve"], a["approval.approved"], a["approval.executing"], arr,
               a["approval.executed"], r["t_woken"]]
        for k, (x, y) in zip(steps, zip(seq, seq[1:])):
            steps[k].append((y - x) * 1000)
    return {k: {"p50": pct(v, 50), "p99": pct(v, 99), "n": len(v)} for k, v in steps.items()}


def scenario_c(ctx: Ctx) -> None:
    a = ctx.args
    prog = Progress(f"c: {a.decisions} decisions, {a.decide_concurrency} at a time")
    d = ctx.deploy("decide")
    assert ctx.provider
    try:
        d.setup("always", idempotency_keys=True)
        d.create_topics()
        for _ in range(a.decide_workers):
            d.start_worker(wait=False)
        for w in d.workers:
            d.wait_worker(w)
        d.start_api(**({"CS_HTTP_THREADS": str(a.http_threads)} if a.http_threads else {}))
        d.start_scheduler()
        tid = d.template_row()
        base_n = a.decide_baseline
        load_rows(d, tid, "dec-", a.decisions + base_n, "pending", prog)
        d.sql("VACUUM ANALYZE approval_requests, approval_states")
        ids = [r[0] for r in d.sql("SELECT id::text FROM approvals WHERE request_id LIKE 'dec-%%' "
                                   "ORDER BY id")]
        sec = "(c) decisions"
        # 1. one decision at a time: the latency without any queueing
        ctx.provider.reset(record=True)
        if base_n:
            bprog = Progress(f"c: {base_n} decisions one at a time")
            brecs = asyncio.run(decide_loop(d, ids[:base_n], 1, bprog))
            bl.wait_for(lambda: len(ctx.provider.arrivals()) >= base_n, 30, interval=0.5,  # type: ignore[union-attr]
                        what="every decided call to reach the provider")
            fb = decision_figures(brecs, ctx.provider.arrivals())
            fb["breakdown"] = breakdown(d, brecs, ctx.provider.arrivals())
            ctx.res.raw["decide_serial"] = fb
            for k, v in fb["breakdown"].items():
                say(f"    one at a time, step {k}: p50 {fmt_ms(v['p50'])}, p99 {fmt_ms(v['p99'])}")
            bprog.done(f"one at a time: -> call p50 {fmt_ms(fb['call_p50_ms'])} p99 {fmt_ms(fb['call_p99_ms'])}; "
                       f"-> wake p50 {fmt_ms(fb['wake_p50_ms'])} p99 {fmt_ms(fb['wake_p99_ms'])}")
            ctx.res.add(sec, f"{fb['decisions']} decisions one at a time: decide request",
                        f"p50 {fmt_ms(fb['api_p50_ms'])}, p99 {fmt_ms(fb['api_p99_ms'])}")
            ctx.res.add(sec, "  one at a time: decision -> provider receives the call",
                        f"p50 {fmt_ms(fb['call_p50_ms'])}, p99 {fmt_ms(fb['call_p99_ms'])}")
            ctx.res.add(sec, "  one at a time: decision -> long-poll client has the result",
                        f"p50 {fmt_ms(fb['wake_p50_ms'])}, p99 {fmt_ms(fb['wake_p99_ms'])}")
        # 2. the measured run: several deciders at once
        ids = ids[base_n:]
        ctx.provider.reset(record=True)
        cpu = CpuMeter(ctx, {"workers": [w.pid for w in d.workers], "api": [d.api_proc.pid]})  # type: ignore[union-attr]
        cpu.start()
        t0 = time.time()
        recs = asyncio.run(decide_loop(d, ids, a.decide_concurrency, prog))
        el = time.time() - t0
        cpu_text = cpu.stop()
        bl.wait_for(lambda: len(ctx.provider.arrivals()) >= len(ids), 30, interval=0.5,  # type: ignore[union-attr]
                    what="every decided call to reach the provider")
        f = decision_figures(recs, ctx.provider.arrivals())
        f["rate"] = len(recs) / el
        f["concurrency"] = a.decide_concurrency
        f["workers"] = a.decide_workers
        f["http_threads"] = a.http_threads or "default"
        f["cpu"] = cpu.last
        f["breakdown"] = breakdown(d, recs, ctx.provider.arrivals())
        ctx.res.raw["decide"] = f
        prog.done(f"{f['ok']}/{f['decisions']} decided at {f['rate']:.0f}/s; -> call p50 "
                  f"{fmt_ms(f['call_p50_ms'])} p99 {fmt_ms(f['call_p99_ms'])}; -> wake p50 "
                  f"{fmt_ms(f['wake_p50_ms'])} p99 {fmt_ms(f['wake_p99_ms'])}; {f['woken_200']} woken with 200 "
                  f"(others {f['woken_other'] or 'none'}, decide answers not 200: {f['decided_other'] or 'none'}); "
                  f"{cpu_text}")
        ctx.res.add(sec, f"{f['decisions']} decisions, {a.decide_concurrency} in flight ({f['rate']:.0f}/s): "
                    "decide request", f"p50 {fmt_ms(f['api_p50_ms'])}, p99 {fmt_ms(f['api_p99_ms'])}")
        ctx.res.add(sec, "decision -> provider receives the call",
                    f"p50 {fmt_ms(f['call_p50_ms'])}, p99 {fmt_ms(f['call_p99_ms'])}",
                    f"p99 <= {TARGETS['decision_call_p99']:.0f} ms",
                    verdict(f["call_p99_ms"] <= TARGETS["decision_call_p99"]))
        ctx.res.add(sec, "decision -> long-poll client has the result",
                    f"p50 {fmt_ms(f['wake_p50_ms'])}, p99 {fmt_ms(f['wake_p99_ms'])}",
                    f"p99 <= {TARGETS['decision_wake_p99']:.0f} ms",
                    verdict(f["wake_p99_ms"] <= TARGETS["decision_wake_p99"] and f["woken_200"] == f["ok"]))
        for k, v in f["breakdown"].items():
            ctx.res.add(sec, f"  step: {k}", f"p50 {fmt_ms(v['p50'])}, p99 {fmt_ms(v['p99'])}")
        noise(ctx, sec, cpu)
    finally:
        ctx.provider.reset(record=False)
        ctx.undeploy(d)


# ---------------------------------------------------------------------------
# (d) 10k long-poll waiters
# ---------------------------------------------------------------------------


def raise_nofile(need: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else max(soft, need)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):
        pass
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def scenario_d(ctx: Ctx) -> None:
    a = ctx.args
    n = a.waiters
    prog = Progress(f"d: {n} long-poll waiters")
    limit = raise_nofile(n + 1000)
    if limit < n + 200:
        prog.done(f"open-files limit {limit} is below {n} connections: lowering to {limit - 200}")
        n = limit - 200
    d = ctx.deploy("waiters")
    try:
        d.setup("always", idempotency_keys=True)
        d.create_topics()
        d.start_worker()
        api = d.start_api()
        tid = d.template_row()
        load_rows(d, tid, "wait-", n, "pending", prog)
        d.sql("VACUUM ANALYZE approval_requests, approval_states")
        ids = [r[0] for r in d.sql("SELECT id::text FROM approvals WHERE request_id LIKE 'wait-%%'")]
        assert api.url
        port = int(api.url.rsplit(":", 1)[1])
        # warm-up: a few ordinary requests so every HTTP thread and pooled connection is in use
        bl.http_get(f"{api.url}/metrics")
        rss_idle = bl.rss_kb(api.pid) or 0

        async def run() -> dict[str, Any]:
            agent_h = {"Authorization": f"Bearer {d.api_key}"}
            sem = asyncio.Semaphore(200)
            conns: list[HttpConn] = []
            opened = 0

            async def open_one(i: int, aid: str) -> HttpConn:
                nonlocal opened
                async with sem:
                    # Waiters from many clients: 32 loopback addresses, each well
                    # inside the api's per-client limit (CS_HTTP_CLIENT_CONNECTIONS).
                    c = HttpConn("127.0.0.1", port, source=f"127.0.1.{1 + i % 32}")
                    await c.open()
                    await c.send("GET", f"/v1/approvals/{aid}/result?wait=60", agent_h)
                    opened += 1
                    if opened % 500 == 0:
                        prog.update(f"{opened}/{n} waiters connected")
                    return c

            t_open = time.monotonic()
            conns = list(await asyncio.gather(*(open_one(i, aid) for i, aid in enumerate(ids))))
            open_s = time.monotonic() - t_open
            loop = asyncio.get_running_loop()
            recv_at: list[float] = []
            statuses: dict[int, int] = {}

            async def recv(c: HttpConn) -> None:
                st, _ = await c.receive()
                recv_at.append(time.time())
                statuses[st] = statuses.get(st, 0) + 1
                await c.close()

            tasks = [asyncio.create_task(recv(c)) for c in conns]

            def suspended() -> float:
                return bl.scrape(port).get("countersign_longpoll_waiters", 0)

            deadline = time.monotonic() + 40
            waiting = 0.0
            while time.monotonic() < deadline:
                waiting = await loop.run_in_executor(None, suspended)
                prog.update(f"{int(waiting)}/{n} suspended in the api")
                if waiting >= n:
                    break
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)  # let the allocator settle
            rss = bl.rss_kb(api.pid) or 0
            hwm = int(re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{api.pid}/status").read_text()).group(1))  # type: ignore[union-attr]
            threads = len(os.listdir(f"/proc/{api.pid}/task"))
            prog.update(f"{int(waiting)} suspended, api RSS {rss / 1024:.1f} MB; waking them all", force=True)
            t0 = time.time()
            await loop.run_in_executor(None, lambda: d.sql(
                "UPDATE approval_states SET status = 'denied', decided_at = clock_timestamp(), "
                "decided_by = 'bench', decision_reason = 'bench wake-up' WHERE id IN "
                "(SELECT id FROM approval_requests WHERE request_id LIKE 'wait-%%') "
                "AND status = 'pending'"))
            t_commit = time.time()
            done, pending = await asyncio.wait(tasks, timeout=60)
            for t in pending:
                t.cancel()
            lat = [(t - t0) * 1000 for t in recv_at]
            return {"n": n, "open_s": open_s, "suspended": waiting, "rss_idle_kb": rss_idle,
                    "rss_kb": rss, "hwm_kb": hwm, "threads": threads,
                    "update_ms": (t_commit - t0) * 1000, "answered": len(recv_at),
                    "all_answered_ms": max(lat) if lat else math.nan,
                    "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "statuses": statuses}

        f = asyncio.run(run())
        ctx.res.raw["waiters"] = f
        mb = f["rss_kb"] / 1024
        prog.done(f"{int(f['suspended'])} suspended: api RSS {mb:.1f} MB (idle {f['rss_idle_kb'] / 1024:.1f} MB); "
                  f"{f['answered']} answered, all within {fmt_ms(f['all_answered_ms'])} of the UPDATE "
                  f"(statuses {f['statuses']})")
        sec = "(d) waiters"
        ctx.res.add(sec, f"api RSS with {int(f['suspended'])} suspended long-polls (idle {f['rss_idle_kb'] / 1024:.0f} MB)",
                    f"{mb:.1f} MB", f"<= {TARGETS['waiters_rss_mb']:.0f} MB",
                    verdict(mb <= TARGETS["waiters_rss_mb"] and f["suspended"] >= n))
        ctx.res.add(sec, f"wake all (one UPDATE -> denied) until {f['answered']} answered",
                    f"{fmt_ms(f['all_answered_ms'])} (p50 {fmt_ms(f['p50_ms'])}, p99 {fmt_ms(f['p99_ms'])})")
    finally:
        ctx.undeploy(d)


# ---------------------------------------------------------------------------
# (e) expiry sweep
# ---------------------------------------------------------------------------


def scenario_e(ctx: Ctx) -> None:
    a = ctx.args
    n = a.sweep
    prog = Progress(f"e: expiry sweep of {n}")
    d = ctx.deploy("sweep")
    assert ctx.provider
    try:
        d.setup("always", idempotency_keys=True)
        d.create_topics()
        d.start_worker()
        d.start_api()
        tid = d.template_row()
        pool_n = int(a.sweep_decide_rate * (a.sweep_before + max(60, n / 2000))) + 500
        load_rows(d, tid, "pool-", pool_n, "pending", prog)
        load_rows(d, tid, "due-", n, "pending", prog, expires="now() - interval '1 second'",
                  chunk=100_000)
        prog.update("VACUUM ANALYZE approval_requests, approval_states", force=True)
        d.sql("VACUUM ANALYZE approval_requests, approval_states")
        ids = [r[0] for r in d.sql("SELECT id::text FROM approvals WHERE request_id LIKE 'pool-%%' "
                                   "ORDER BY id")]
        ctx.provider.reset(record=True)
        # before: decisions with no sweep running
        half = int(a.sweep_decide_rate * a.sweep_before)
        prog.update(f"decisions before the sweep ({a.sweep_decide_rate:.0f}/s)", force=True)
        before = asyncio.run(decide_loop(d, ids[:half], 8, prog, pace=a.sweep_decide_rate, wait=False))
        # during: start the scheduler, decide until everything due has expired
        state = {"expired": 0.0, "done": False}
        sched = d.start_scheduler()
        t0 = time.time()
        deadline = time.monotonic() + max(120.0, n / 1000.0) * a.timeout_mult

        def stop() -> bool:
            return bool(state["done"])

        async def during() -> list[dict[str, Any]]:
            loop = asyncio.get_running_loop()

            async def watch() -> None:
                while time.monotonic() < deadline:
                    m = await loop.run_in_executor(None, bl.scrape, sched.metrics_port or 0)
                    state["expired"] = m.get('countersign_scheduler_rows_total{duty="expirer"}', 0)
                    el = time.time() - t0
                    prog.update(f"{int(state['expired'])}/{n} expired ({fmt_rate(state['expired'] / el)}/s), "
                                "decisions continue")
                    if state["expired"] >= n:
                        break
                    await asyncio.sleep(0.2)
                state["t1"] = time.time()
                state["done"] = True

            w = asyncio.create_task(watch())
            recs = await decide_loop(d, ids[half:], 8, Progress("e: decisions"), pace=a.sweep_decide_rate,
                                     stop=stop, wait=False)
            await w
            return recs

        cpu = CpuMeter(ctx, {"scheduler": [sched.pid], "workers": [x.pid for x in d.workers],
                             "api": [d.api_proc.pid]})  # type: ignore[union-attr]
        cpu.start()
        during_recs = asyncio.run(during())
        cpu_text = cpu.stop()
        t1 = float(state.get("t1", time.time()))
        expired = d.one("SELECT count(*) FROM approvals WHERE request_id LIKE 'due-%%' AND status = 'expired'")
        lag = d.one("SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)), 0)"
                    "::bigint FROM pg_replication_slots WHERE database = current_database()")
        time.sleep(1)
        arrivals = ctx.provider.arrivals()
        fb = decision_figures(before, arrivals)
        fd = decision_figures(during_recs, arrivals)
        sweep_s = t1 - t0
        f = {"n": n, "expired": expired, "seconds": sweep_s, "rate": expired / sweep_s,
             "event_slot_lag_bytes_at_end": lag, "before": fb, "during": fd, "cpu": cpu.last,
             "complete": expired >= n}
        ctx.res.raw["sweep"] = f
        prog.done(f"{expired}/{n} expired in {sweep_s:.1f}s ({fmt_rate(f['rate'])}/s); event slot lag {lag} bytes; "
                  f"decide p99 before {fmt_ms(fb['api_p99_ms'])} during {fmt_ms(fd['api_p99_ms'])}; {cpu_text}")
        sec = "(e) expiry sweep"
        ctx.res.add(sec, f"{n} due approvals expired by the scheduler",
                    f"{sweep_s:.1f} s ({fmt_rate(f['rate'])}/s)" + ("" if f["complete"] else " (timed out)"))
        ctx.res.add(sec, f"decide request before / during ({a.sweep_decide_rate:.0f}/s)",
                    f"p50 {fmt_ms(fb['api_p50_ms'])} / {fmt_ms(fd['api_p50_ms'])}, "
                    f"p99 {fmt_ms(fb['api_p99_ms'])} / {fmt_ms(fd['api_p99_ms'])}")
        ctx.res.add(sec, "decision -> call before / during",
                    f"p50 {fmt_ms(fb['call_p50_ms'])} / {fmt_ms(fd['call_p50_ms'])}, "
                    f"p99 {fmt_ms(fb['call_p99_ms'])} / {fmt_ms(fd['call_p99_ms'])}")
        ctx.res.add(sec, "WAL the event slot held back when the sweep ended", f"{lag} bytes")
        noise(ctx, sec, cpu, what="the sweep")
    finally:
        ctx.provider.reset(record=False)
        ctx.undeploy(d)


# ---------------------------------------------------------------------------
# (f) RSS across 1M approvals
# ---------------------------------------------------------------------------


def scenario_f(ctx: Ctx) -> None:
    a = ctx.args
    total = a.rss_total
    prog = Progress(f"f: RSS across {total} approvals")
    d = ctx.deploy("rss")
    try:
        d.setup("rules", idempotency_keys=True,
                rules=[{"method": "POST", "path": "/v1/refunds*", "field": "amount", "op": ">",
                        "value": 100}])
        d.create_topics()
        for _ in range(a.rss_workers):
            d.start_worker(wait=False)
        for w in d.workers:
            d.wait_worker(w)
        api = d.start_api()
        sched = d.start_scheduler()
        procs = {"api": api, "scheduler": sched, **{w.name: w for w in d.workers}}
        samples: list[dict[str, Any]] = []
        producer = bl.producer_for(d.kafka, **{"linger.ms": 5})
        assert api.url
        port = int(api.url.rsplit(":", 1)[1])
        api_share = total // 20 if a.rss_api_clients else 0   # 5% through the api
        kafka_total = total - api_share
        state: dict[str, Any] = {"produced": 0, "api_done": 0, "processed": 0.0, "stop": False,
                                 "api_errors_sample": [], "api_inflight": 0}
        t0 = time.time()

        async def run() -> None:
            loop = asyncio.get_running_loop()

            async def produce() -> None:
                i = 0
                while i < kafka_total and not state["stop"]:
                    backlog = i - (state["processed"] - state["api_done"])
                    if backlog > 20000:
                        await asyncio.sleep(0.05)
                        continue
                    for _ in range(2000):
                        if i >= kafka_total:
                            break
                        rid = f"f-{i}"
                        amount = 500 if i % 2 == 0 else 50   # half pending, half auto-approved
                        while True:
                            try:
                                value = d.envelope(rid, amount)
                                producer.produce(d.topics["requests"], key=rid.encode(),
                                                 value=value, headers=d.signed(value))
                                break
                            except BufferError:
                                producer.poll(0.01)
                        i += 1
                    state["produced"] = i
                    producer.poll(0)
                    await asyncio.sleep(0)
                await loop.run_in_executor(None, producer.flush, 60)

            async def api_client(k: int) -> None:
                # paced: submit a call that needs approval (answered at once with 202),
                # then read its status, as an agent would
                c = HttpConn("127.0.0.1", port)
                h = {"Authorization": f"Bearer {d.api_key}", "Content-Type": "application/json"}
                j = 0
                period = 1.0 / a.rss_api_rate
                nxt = time.monotonic()
                while not state["stop"] and state["api_done"] + state["api_inflight"] < api_share:
                    state["api_inflight"] += 1
                    nxt += period
                    body = json.dumps({"grant_id": "stripe", "method": "POST",
                                       "url": f"{d.provider.url}/v1/refunds",
                                       "json": {"amount": 500}, "reason": "bench api",
                                       "idempotency_key": f"api-{k}-{j}"}).encode()
                    j += 1
                    try:
                        st, resp = await c.request("POST", "/v1/proxy", h, body)
                        if st == 202:
                            aid = json.loads(resp)["approval_id"]
                            await c.request("GET", f"/v1/approvals/{aid}", h)
                    except (OSError, asyncio.IncompleteReadError, ValueError, KeyError):
                        await c.close()
                        continue
                    finally:
                        state["api_inflight"] -= 1
                    if st in (200, 202):
                        state["api_done"] += 1
                    else:
                        errs = state.setdefault("api_errors", {})
                        errs[st] = errs.get(st, 0) + 1
                        if len(state["api_errors_sample"]) < 3:
                            state["api_errors_sample"].append(resp[:300])
                    delay = nxt - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    else:
                        nxt = time.monotonic()
                await c.close()

            async def sample() -> None:
                while not state["stop"]:
                    ms = await loop.run_in_executor(None, d.worker_metrics)
                    ingested = sum(m.get("countersign_ingest_stored_total", 0) for m in ms)
                    state["ingested"] = ingested
                    state["processed"] = ingested + state["api_done"]
                    row = {"t": time.time() - t0, "processed": state["processed"]}
                    for name, p in procs.items():
                        row[name] = bl.rss_kb(p.pid)
                    samples.append(row)
                    prog.update(f"{int(state['processed'])}/{total} approvals stored "
                                f"(api {state['api_done']}), RSS api {row['api'] / 1024:.0f} MB, "
                                f"worker1 {(row.get('worker1') or 0) / 1024:.0f} MB")
                    await asyncio.sleep(a.rss_interval)

            deadline = time.monotonic() + max(300.0, total / 400.0) * a.timeout_mult
            s = asyncio.create_task(sample())
            clients = [asyncio.create_task(api_client(k)) for k in range(a.rss_api_clients)]
            prod = asyncio.create_task(produce())
            while time.monotonic() < deadline:
                if state["processed"] >= total:
                    break
                if state.get("ingested", 0) >= kafka_total and all(c.done() for c in clients):
                    break   # some api submissions were refused: do not wait for them
                await asyncio.sleep(0.5)
            state["stop"] = True
            await prod
            await asyncio.gather(*clients)
            # let the executions finish
            while time.monotonic() < deadline:
                left = await loop.run_in_executor(None, d.one,
                                                  "SELECT count(*) FROM approvals WHERE status IN ('approved','executing')")
                if not left:
                    break
                prog.update(f"{left} calls still to execute")
                await asyncio.sleep(1)
            await asyncio.sleep(a.rss_interval)
            state["stop_sampling"] = True
            s.cancel()

        cpu = CpuMeter(ctx, {"api": [api.pid], "scheduler": [sched.pid], "workers": [w.pid for w in d.workers]})
        cpu.start()
        try:
            asyncio.run(run())
        finally:
            producer.purge()
            producer.flush(0)
        cpu_text = cpu.stop()
        counts = dict(d.sql("SELECT status, count(*) FROM approvals GROUP BY status"))
        processed = sum(counts.values())
        f: dict[str, Any] = {"total": processed, "by_status": counts, "samples": samples,
                             "seconds": time.time() - t0, "procs": {}}
        flat_all = True
        sec = "(f) RSS"
        for name in procs:
            vals = [s[name] for s in samples if s.get(name)]
            if not vals:
                continue
            # warm-up = the first 20% of the approvals; compare the peak over 20-60% with 60-100%
            mid = [s[name] for s in samples if s.get(name) and 0.2 * total <= s["processed"] < 0.6 * total]
            end = [s[name] for s in samples if s.get(name) and s["processed"] >= 0.6 * total]
            early = max(mid or vals[: max(1, len(vals) // 2)])
            late = max(end or vals[-max(1, len(vals) // 4):])
            growth = late - early
            flat = growth <= max(0.10 * early, 8 * 1024)
            flat_all = flat_all and flat
            f["procs"][name] = {"min_kb": min(vals), "max_kb": max(vals), "first_kb": vals[0],
                                "last_kb": vals[-1], "early_kb": early, "late_kb": late, "flat": flat}
            ctx.res.add(sec, f"{name} RSS min / max (peak over 20-60% -> 60-100% of the approvals)",
                        f"{min(vals) / 1024:.1f} / {max(vals) / 1024:.1f} MB "
                        f"({early / 1024:.1f} -> {late / 1024:.1f})", "flat",
                        # --quick's few seconds end inside the warm-up: no verdict
                        "n/a (quick)" if ctx.args.quick else verdict(flat))
        f["flat"] = flat_all
        ctx.res.raw["rss"] = f
        f["api_submissions"] = state["api_done"]
        f["api_errors"] = state.get("api_errors", {})
        if f["api_errors"]:
            say(f"    api submissions refused: {f['api_errors']}: {state['api_errors_sample']}")
        ctx.res.add(sec, f"approvals processed in {f['seconds']:.0f}s ({state['api_done']} through the api, the rest "
                    "through Kafka)", f"{processed} ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))})")
        noise(ctx, sec, cpu)
        prog.done(f"{processed} approvals; " + "; ".join(
            f"{k} {v['min_kb'] / 1024:.0f}-{v['max_kb'] / 1024:.0f} MB" for k, v in f["procs"].items())
            + f"; {cpu_text}")
    finally:
        ctx.undeploy(d)


# ---------------------------------------------------------------------------
# plans: the executor's two statements under custom and generic plans
# ---------------------------------------------------------------------------


def _named_query(path: Path, name: str) -> str:
    m = re.search(r"-- name: " + name + r"\n(.*?)(?=\n-- name: |\Z)", path.read_text(), re.S)
    if not m:
        raise RuntimeError(f"no query {name} in {path}")
    return "\n".join(ln for ln in m.group(1).splitlines() if not ln.startswith("--")).strip().rstrip(";")


def scenario_plans(ctx: Ctx) -> None:
    """EXPLAIN ANALYZE of claim_approved and complete_executions (sql/queries/execution.sql)
    with a backlog of approved rows and calls in flight, under forced custom and generic
    plans (the worker runs them as prepared statements), next to the variants proposed in
    bench/RESULTS.md. Not part of the default run: bench/run --only plans."""
    a = ctx.args
    prog = Progress("plans")
    d = ctx.deploy("plans")
    assert ctx.provider
    try:
        d.setup("never", idempotency_keys=True)
        d.create_topics()
        d.start_worker()
        tid = d.template_row()
        bl.wait_for(lambda: d.one("SELECT status FROM approvals WHERE id = %s", tid) == "executed",
                    30, what="the template call to execute")
        d.stop_workers()
        q = REPO_ROOT / "sql" / "queries" / "execution.sql"
        claim0, complete0 = _named_query(q, "claim_approved"), _named_query(q, "complete_executions")
        variants = {
            "current": (claim0, complete0),
            "proposed": (claim0.replace("FROM c WHERE a.id = c.id AND a.status = 'approved'",
                                        "WHERE a.id = ANY (ARRAY(SELECT id FROM c)) AND a.status = 'approved'"),
                         complete0.replace("WITH r AS (", "WITH r AS MATERIALIZED (")),
        }
        backlog = a.m
        load_rows(d, tid, "pl-", backlog, "approved", prog)
        d.sql("VACUUM ANALYZE approval_requests, approval_states")
        conn = d.conn()
        conn.prepare_threshold = None   # our own PREPAREs only
        # calls in flight of another worker (never completed): what complete_executions joins past
        conn.execute(f"PREPARE warm(text, int, int) AS {claim0}")
        conn.execute("EXECUTE warm('other', 250, 30000)")
        out = {}
        for mode in ("force_custom_plan", "force_generic_plan"):
            conn.execute(f"SET plan_cache_mode = {mode}")
            for name, (cl, co) in variants.items():
                conn.execute("DEALLOCATE ALL")
                conn.execute(f"PREPARE cl(text, int, int) AS {cl}")
                conn.execute(f"PREPARE co(text, text) AS {co}")
                conn.execute(f"SET plan_cache_mode = {mode}")
                tc, tk = [], []
                for _ in range(5):
                    t = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE cl('bench', 100, 30000)").fetchone()[0]
                    tc.append(t[0]["Execution Time"])
                    ids = [r[0] for r in conn.execute("SELECT id::text FROM approvals WHERE status = 'executing' "
                                                      "AND lease_owner = 'bench'").fetchall()]
                    done = json.dumps([{"id": i, "status": "executed", "response_status": 200,
                                        "response_headers": {"content-type": "application/json"},
                                        "body_b64": "eyJvayI6dHJ1ZX0=", "truncated": False} for i in ids])
                    from psycopg import sql as psql

                    t = conn.execute(psql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE co('bench', {})").format(
                        psql.Literal(done))).fetchone()[0]
                    tk.append(t[0]["Execution Time"])
                out[f"{name} {mode}"] = {"claim_ms": tc, "complete_ms": tk}
                label = f"{name}, {mode.replace('force_', '').replace('_plan', '')} plan"
                ctx.res.add("plans", f"{label}: claim 100 / complete 100 (backlog {backlog})",
                            f"{pct(tc, 50):.1f} ms / {pct(tk, 50):.1f} ms (median of 5)")
                prog.update(f"{label}: claim {pct(tc, 50):.1f} ms, complete {pct(tk, 50):.1f} ms", force=True)
        conn.execute("RESET plan_cache_mode")
        ctx.res.raw["plans"] = out
        prog.done("done")
    finally:
        ctx.provider.reset(record=False)
        ctx.undeploy(d)


# ---------------------------------------------------------------------------
# machine details and main
# ---------------------------------------------------------------------------


def machine(ctx: Ctx) -> dict[str, str]:
    info: dict[str, str] = {}
    info["date"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info["cpu"] = f"{os.cpu_count()} cores ({model})" if model else f"{os.cpu_count()} cores"
    mem = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1])
    info["memory"] = f"{mem / 1024 / 1024:.1f} GiB"
    info["kernel"] = platform.release()
    info["load average at start"] = "%.1f %.1f %.1f (1, 5, 15 min)" % os.getloadavg()
    try:
        rev = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        info["git commit"] = rev + (" (working tree has uncommitted changes)" if dirty else "")
    except OSError:
        info["git commit"] = "?"
    info["binaries"] = str(BUILD_DIR)
    if ctx.pg:
        import psycopg

        with psycopg.connect(ctx.pg.url("postgres"), autocommit=True) as c:
            def show(k: str) -> str:
                row = c.execute(f"SHOW {k}").fetchone()
                return str(row[0]) if row else "?"

            info["postgres"] = show("server_version") + " (" + ", ".join(
                f"{k}={show(k)}" for k in ("shared_buffers", "fsync", "synchronous_commit")) + ")"
    jars = Path(os.environ.get("CS_CACHE_DIR", Path.home() / ".cache" / "countersign"))
    kv = sorted(p.name for p in jars.glob("kafka-*"))
    info["kafka"] = (kv[-1].removeprefix("kafka-") if kv else "?") + " (KRaft, single node, -Xmx512m)"
    try:
        import confluent_kafka

        info["librdkafka"] = subprocess.run(["pkg-config", "--modversion", "rdkafka"], capture_output=True,
                                            text=True).stdout.strip() + " (bench producer: " + confluent_kafka.libversion()[0] + ")"
    except Exception:  # noqa: BLE001
        pass
    return info


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="scaled-down run (CI): under ~3 minutes")
    p.add_argument("--only", default="", help=f"comma-separated scenarios to run, of {','.join(ALL)}")
    p.add_argument("--skip", default="", help="comma-separated scenarios to skip")
    p.add_argument("-n", "--requests", dest="n", type=int, help="(a) requests to ingest (default 200000; quick 20000)")
    p.add_argument("-m", "--calls", dest="m", type=int, help="(b) approved calls to drain (default 100000; quick 10000)")
    p.add_argument("--ingest-configs", default="", help="(a) WORKERS/PARTITIONS/BATCH,... e.g. 1/6/1000,2/6/1000")
    p.add_argument("--exec-configs", default="", help="(b) WORKERS/CONCURRENCY/CLAIM,... e.g. 1/256/100,2/256/100")
    p.add_argument("--latency-rate", type=float, help="(b) requests/s for the latency run "
                   "(default: a quarter of the 1-worker drain rate, 50..2000)")
    p.add_argument("--latency-seconds", type=float, help="(b) seconds of the latency run (default 10; quick 4)")
    p.add_argument("--decisions", type=int, help="(c) decisions (default 10000; quick 1000)")
    p.add_argument("--decide-concurrency", type=int, default=4, help="(c) decisions in flight (default 4)")
    p.add_argument("--decide-baseline", type=int, help="(c) decisions made one at a time first (default 300; quick 100)")
    p.add_argument("--decide-workers", type=int, default=1, help="(c) worker processes (default 1)")
    p.add_argument("--http-threads", type=int, default=0,
                   help="(c) the api's CS_HTTP_THREADS (default: the api's own default)")
    p.add_argument("--waiters", type=int, help="(d) long-poll waiters (default 10000; quick 2000)")
    p.add_argument("--sweep", type=int, help="(e) due approvals to expire (default 1000000; quick 50000)")
    p.add_argument("--sweep-decide-rate", type=float, default=50.0, help="(e) decisions/s during the sweep")
    p.add_argument("--sweep-before", type=float, help="(e) seconds of decisions before the sweep (default 10; quick 4)")
    p.add_argument("--rss-total", type=int, help="(f) approvals across which RSS is sampled (default 1000000; quick 30000)")
    p.add_argument("--rss-workers", type=int, default=2, help="(f) worker processes (default 2)")
    p.add_argument("--rss-api-clients", type=int, default=4, help="(f) concurrent api /v1/proxy clients")
    p.add_argument("--rss-api-rate", type=float, default=50.0, help="(f) submissions/s of each api client")
    p.add_argument("--rss-interval", type=float, help="(f) seconds between RSS samples (default 3; quick 1)")
    p.add_argument("--batch-members", type=int, help="(g) members of the batch (default 10000; quick 2000)")
    p.add_argument("--limited-members", type=int, help="(h) members of the batch (default 10000; quick 1000)")
    p.add_argument("--limited-rate", type=float, default=100.0, help="(h) the provider's calls/s (default 100)")
    p.add_argument("--limited-burst", type=int, default=10,
                   help="(h) the grant's burst (default 10, the provider's; its rate is 0.9x the provider's)")
    p.add_argument("--river-jobs", type=int, help="River: jobs for river bench -n (default 100000; quick 20000)")
    p.add_argument("--pgbench-seconds", type=int, help="pgbench duration (default 15; quick 5)")
    p.add_argument("--pgbench-clients", type=int, default=4, help="pgbench clients (default 4)")
    p.add_argument("--console-rows", type=int, help="(console) approvals loaded for the console (default 1000000; "
                   "quick 100000)")
    p.add_argument("--console-repeat", type=int, default=20, help="(console) fetches of each console page")
    p.add_argument("--timeout-mult", type=float, default=1.0, help="multiply every scenario deadline")
    p.add_argument("--pg-stats", action="store_true",
                   help="load pg_stat_statements and print the top statements of each measured phase")
    p.add_argument("--perf", action="store_true",
                   help="perf record our processes and Postgres during each measured phase; print the top "
                        "symbols (implies --keep for the perf data)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder and databases (logs)")
    p.add_argument("--markdown", default="", help="also write the results as Markdown to this file")
    p.add_argument("--json", default="", help="also write the raw figures as JSON to this file")
    a = p.parse_args(argv)
    q = a.quick
    defaults = {"n": (20_000, 200_000), "m": (10_000, 100_000), "latency_rate": (0.0, 0.0),
                "latency_seconds": (3.0, 10.0), "decisions": (1000, 10_000), "waiters": (2000, 10_000),
                "sweep": (30_000, 1_000_000), "sweep_before": (4.0, 10.0), "rss_total": (20_000, 1_000_000),
                "rss_interval": (1.0, 3.0), "decide_baseline": (100, 300), "river_jobs": (20_000, 100_000), "batch_members": (2000, 10_000), "limited_members": (1000, 10_000), "pgbench_seconds": (5, 15),
                "console_rows": (100_000, 1_000_000)}
    for k, (qv, fv) in defaults.items():
        if getattr(a, k) is None:
            setattr(a, k, qv if q else fv)
    only = [s for s in a.only.split(",") if s] or list(ALL)
    skip = {s for s in a.skip.split(",") if s}
    bad = [s for s in only + list(skip) if s not in ALL + EXTRA]
    if bad:
        p.error(f"unknown scenario(s) {bad}; choose from {ALL + EXTRA}")
    a.scenarios = [s for s in ALL + EXTRA if s in only and s not in skip]
    if a.perf:
        a.keep = True
    return a


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not bl.PROVIDER_BIN.exists():
        say("bench: bench/.build/provider is missing: run bench/run (it builds it)")
        return 2
    for b in ("countersign", "countersign-worker", "countersign-api", "countersign-scheduler"):
        if not (BUILD_DIR / b).exists():
            say(f"bench: {BUILD_DIR / b} is missing: run bench/run (it runs make)")
            return 2
    tmp = Path(tempfile.mkdtemp(prefix="cs-bench-"))
    os.chmod(tmp, 0o755)
    ctx = Ctx(args, tmp)
    started = time.monotonic()

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    status = 0
    failures: list[str] = []
    info: dict[str, str] = {}
    try:
        say(f"bench: temporary folder {tmp}; scenarios {','.join(args.scenarios)}"
            f"{' (quick)' if args.quick else ''}")
        if args.pg_stats:
            os.environ["CS_PG_OPTS"] = (os.environ.get("CS_PG_OPTS", "") + " -c shared_preload_libraries="
                                        "pg_stat_statements -c pg_stat_statements.track=all "
                                        "-c pg_stat_statements.track_planning=on "
                                        "-c track_wal_io_timing=on").strip()
        ctx.pg = Postgres(tmp / "pg", free_port())
        ctx.pg.start()
        ctx.kafka = Kafka(tmp / "kafka", free_port(), free_port())
        ctx.kafka.start()
        ctx.provider = Provider(ctx.logs)
        bl.make_template(ctx.pg, args.pg_stats)
        info = machine(ctx)
        say("bench: " + "; ".join(f"{k}: {v}" for k, v in info.items()))
        runners = {"a": scenario_a, "pgbench": scenario_pgbench, "b": scenario_b, "river": scenario_river,
                   "c": scenario_c, "d": scenario_d, "e": scenario_e, "f": scenario_f,
                   "g": scenario_g, "h": scenario_h, "plans": scenario_plans,
                   "console": scenario_console}
        for s in args.scenarios:
            try:
                runners[s](ctx)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # noqa: BLE001 - report and go on with the next scenario
                failures.append(s)
                say(f"bench: scenario {s} failed: {exc}")
                traceback.print_exc()
                ctx.res.add(f"({s})" if len(s) == 1 else s, "FAILED", str(exc)[:80])
                for dep in list(ctx.deployments):
                    for p in dep.procs:
                        say(f"----- {p.name} (tail) -----\n{p.tail(2000)}")
                    ctx.undeploy(dep)
    except KeyboardInterrupt as exc:
        say(f"\nbench: interrupted ({exc}); cleaning up")
        status = 130
    finally:
        for dep in list(ctx.deployments):
            try:
                ctx.undeploy(dep)
            except Exception:  # noqa: BLE001
                pass
        if ctx.provider:
            ctx.provider.stop()
        if ctx.kafka:
            try:
                ctx.kafka.stop()
            except Exception as exc:  # noqa: BLE001
                say(f"bench: stopping Kafka: {exc}")
        if ctx.pg:
            try:
                ctx.pg.stop()
            except Exception as exc:  # noqa: BLE001
                say(f"bench: stopping Postgres: {exc}")
        if args.keep:
            say(f"bench: kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    if status == 0 or ctx.res.rows:
        total = time.monotonic() - started
        info["load average at end"] = "%.1f %.1f %.1f (1, 5, 15 min)" % os.getloadavg()
        header = "\n".join(f"  {k}: {v}" for k, v in info.items())
        cmd = "bench/run " + " ".join(argv)
        print(f"\nCountersign benchmark -- {cmd.strip()}{' (INTERRUPTED: partial results)' if status else ''}"
              f"\n{header}\n  total time: {total:.0f}s\n"
              "  single run on a shared machine: figures are indicative, not averages\n")
        print(ctx.res.table())
        if args.markdown:
            Path(args.markdown).write_text(
                f"Command: `{cmd.strip()}`\n\n" + "\n".join(f"- {k}: {v}" for k, v in info.items())
                + f"\n- total time: {total:.0f}s\n\n" + ctx.res.markdown() + "\n")
        if args.json:
            Path(args.json).write_text(json.dumps({"machine": info, "results": ctx.res.raw}, indent=1,
                                                  default=str))
        if failures and status == 0:
            say(f"bench: scenario(s) failed: {', '.join(failures)}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
