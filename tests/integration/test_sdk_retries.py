"""The three clients retry by one policy: docs/RETRIES.md's table.

Reads the table, then each client's constants -- the Python SDK's from
countersign/_transport.py and _operations.py, the TypeScript SDK's from
src/agent.ts's RETRY_POLICY, the C client's from include/countersign.h -- and
fails on any difference; also checks that each client's code uses those
constants (no second copy of a number). It reads source text only: no build,
no services, no packages beyond Python's own, so `make check` runs it as a
script (`python3 tests/integration/test_sdk_retries.py`); pytest collects it too.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "RETRIES.md"
TS_AGENT = ROOT / "sdk" / "typescript" / "src" / "agent.ts"
C_HEADER = ROOT / "include" / "countersign.h"
C_SOURCE = ROOT / "client" / "countersign.c"
PY_SDK = ROOT / "sdk" / "python" / "countersign"

KEYS = ("max_retries", "backoff_first_seconds", "backoff_max_seconds",
        "retry_after_max_seconds", "retry_statuses", "long_poll_max_seconds")


def number(text: str) -> Any:
    """A number, or a list of numbers separated by commas."""
    parts = [p.strip() for p in text.split(",")]
    values = [float(p) if "." in p else int(p) for p in parts]
    return values if len(values) > 1 else values[0]


def policy() -> dict[str, Any]:
    """The first table of docs/RETRIES.md: | `key` | value | meaning |."""
    rows = re.findall(r"^\| `([a-z_]+)` \| ([0-9., ]+) \|", TABLE.read_text(), re.M)
    table = {k: number(v) for k, v in rows}
    assert tuple(table) == KEYS, f"docs/RETRIES.md's table has {list(table)}"
    table["retry_statuses"] = sorted(table["retry_statuses"])
    return table


def python_constants(module: str) -> dict[str, Any]:
    """The module-level ``NAME = literal`` assignments of a module of the
    Python SDK (``frozenset({...})`` read as a sorted list)."""
    out: dict[str, Any] = {}
    for node in ast.parse((PY_SDK / module).read_text()).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)):
            continue
        value = node.value
        if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                and value.func.id == "frozenset" and len(value.args) == 1):
            value = value.args[0]
        try:
            literal = ast.literal_eval(value)
        except ValueError:
            continue
        out[node.targets[0].id] = sorted(literal) if isinstance(literal, set) else literal
    return out


def python_policy() -> dict[str, Any]:
    transport = python_constants("_transport.py")
    operations = python_constants("_operations.py")
    return {
        "max_retries": transport["DEFAULT_MAX_RETRIES"],
        "backoff_first_seconds": transport["DEFAULT_RETRY_BACKOFF"],
        "backoff_max_seconds": transport["DEFAULT_RETRY_BACKOFF_MAX"],
        "retry_after_max_seconds": transport["MAX_RETRY_AFTER"],
        "retry_statuses": transport["RETRY_STATUSES"],
        "long_poll_max_seconds": operations["MAX_WAIT_SECONDS"],
    }


def typescript_policy() -> dict[str, Any]:
    src = TS_AGENT.read_text()
    m = re.search(r"^export const RETRY_POLICY = Object\.freeze\(\{\n(.*?)^\}\);", src, re.M | re.S)
    assert m, "src/agent.ts has no `export const RETRY_POLICY = Object.freeze({...});`"
    fields = dict(re.findall(r"^\s+(\w+): (.+?),$", m.group(1), re.M))
    wait = re.search(r"^export const MAX_LONG_POLL_SECONDS = (\d+);", src, re.M)
    assert wait, "src/agent.ts has no MAX_LONG_POLL_SECONDS"
    statuses = re.fullmatch(r"Object\.freeze\(\[([0-9, ]+)\]\)", fields.get("retryStatuses", ""))
    assert statuses, f"RETRY_POLICY.retryStatuses is not a frozen list of numbers: {fields}"
    return {
        "max_retries": ast.literal_eval(fields["maxRetries"]),
        "backoff_first_seconds": ast.literal_eval(fields["backoffFirstSeconds"]),
        "backoff_max_seconds": ast.literal_eval(fields["backoffMaxSeconds"]),
        "retry_after_max_seconds": ast.literal_eval(fields["retryAfterMaxSeconds"]),
        "retry_statuses": sorted(number(statuses.group(1))),
        "long_poll_max_seconds": int(wait.group(1)),
    }


def c_policy() -> dict[str, Any]:
    header = C_HEADER.read_text()

    def macro(name: str) -> str:
        m = re.search(rf"^#define {name}\s+(.+?)\s*(?:/\*.*)?$", header, re.M)
        assert m, f"include/countersign.h does not define {name}"
        return m.group(1)

    statuses = re.fullmatch(r"\{\s*([0-9, ]+)\s*\}", macro("COUNTERSIGN_RETRY_STATUSES"))
    assert statuses, "COUNTERSIGN_RETRY_STATUSES is not a braced list of numbers"
    return {
        "max_retries": number(macro("COUNTERSIGN_DEFAULT_MAX_RETRIES")),
        "backoff_first_seconds": number(macro("COUNTERSIGN_DEFAULT_BACKOFF")),
        "backoff_max_seconds": number(macro("COUNTERSIGN_DEFAULT_BACKOFF_MAX")),
        "retry_after_max_seconds": number(macro("COUNTERSIGN_RETRY_AFTER_MAX")),
        "retry_statuses": sorted(number(statuses.group(1))),
        "long_poll_max_seconds": number(macro("COUNTERSIGN_MAX_WAIT_SECONDS")),
    }


def follows_the_table(client: str, read: Callable[[], dict[str, Any]]) -> None:
    want = policy()
    got = read()
    diff = {k: (want[k], got[k]) for k in KEYS if got[k] != want[k]}
    assert not diff, f"{client} differs from docs/RETRIES.md (table, client): {diff}"


def test_python_follows_the_table() -> None:
    follows_the_table("Python", python_policy)


def test_typescript_follows_the_table() -> None:
    follows_the_table("TypeScript", typescript_policy)


def test_c_follows_the_table() -> None:
    follows_the_table("C", c_policy)


def test_python_code_uses_the_policy_not_copies() -> None:
    surface = (PY_SDK / "_agent.py").read_text()
    for use in ("max_retries: int = DEFAULT_MAX_RETRIES",
                "retry_backoff: float = DEFAULT_RETRY_BACKOFF",
                "retry_backoff_max: float = DEFAULT_RETRY_BACKOFF_MAX"):
        assert surface.count(use) == 2, f"Agent and SyncAgent should both default {use}"
    transport = (PY_SDK / "_transport.py").read_text()
    assert "min(MAX_RETRY_AFTER, seconds)" in transport
    assert "exc.status_code in RETRY_STATUSES" in transport


def test_typescript_code_uses_the_policy_not_copies() -> None:
    src = TS_AGENT.read_text()
    body = src.split("export const RETRY_POLICY", 1)[1].split("});", 1)[1]
    for use in ("RETRY_POLICY.maxRetries", "RETRY_POLICY.backoffFirstSeconds",
                "RETRY_POLICY.backoffMaxSeconds", "RETRY_POLICY.retryAfterMaxSeconds",
                "RETRY_POLICY.retryStatuses"):
        assert use in body, f"src/agent.ts does not use {use}"
    assert not re.search(r"\b(8000|30000|60000|30_000|60_000)\b", body), \
        "src/agent.ts has a retry bound written out instead of RETRY_POLICY"


def test_c_code_uses_the_header_not_copies() -> None:
    src = C_SOURCE.read_text()
    for use in ("COUNTERSIGN_DEFAULT_MAX_RETRIES", "COUNTERSIGN_DEFAULT_BACKOFF",
                "COUNTERSIGN_DEFAULT_BACKOFF_MAX", "COUNTERSIGN_RETRY_AFTER_MAX",
                "COUNTERSIGN_RETRY_STATUSES"):
        assert re.search(rf"\b{use}\b", src), f"client/countersign.c does not use {use}"
    assert not re.search(r"http_status == \d{3}", src), "client/countersign.c lists statuses itself"
    approval = (ROOT / "client" / "approval.c").read_text()
    assert "COUNTERSIGN_MAX_WAIT_SECONDS" in approval
    assert not re.search(r"#define MAX_WAIT_SECONDS", approval)


if __name__ == "__main__":
    checks = [(name, f) for name, f in sorted(globals().items()) if name.startswith("test_")]
    for name, check in checks:
        check()
        print(f"ok   {name}")
    print(f"{len(checks)} retry-policy checks: the three clients follow docs/RETRIES.md")
