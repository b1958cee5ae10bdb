"""Fixtures of the SDK's unit tests (no network: httpx.MockTransport).

The tests import the package from this checkout (sdk/python), installed or not.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import countersign._transport as transport_module

from sdkhelpers import FakeClock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    c = FakeClock()
    monkeypatch.setattr(transport_module, "_now", c.now)
    monkeypatch.setattr(transport_module, "_sleep", c.sleep)
    monkeypatch.setattr(transport_module, "_sleep_sync", c.sleep_sync)
    yield c
