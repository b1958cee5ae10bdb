"""The package as shipped: version, typing marker, exports, README examples."""

from __future__ import annotations

import re
from pathlib import Path

import countersign

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_version_matches_pyproject() -> None:
    m = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert m and m.group(1) == countersign.__version__


def test_typed_marker_is_shipped() -> None:
    assert (ROOT / "countersign" / "py.typed").exists()
    assert 'countersign = ["py.typed"]' in (ROOT / "pyproject.toml").read_text()


def test_exports_exist() -> None:
    for name in countersign.__all__:
        assert hasattr(countersign, name), name


def test_readme_blocks_compile() -> None:
    blocks = python_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 4
    for i, src in enumerate(blocks):
        compile(src, f"README.md python block {i + 1}", "exec")
        assert "from countersign import" in src and "COUNTERSIGN_API_KEY" in src
