"""Shared fixtures: the SEEDS staged example, golden files, deterministic hypothesis."""

import os
import pathlib

import pytest
import sympy as sp
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

GOLDEN = pathlib.Path(__file__).parent / "golden"
UPDATE = os.environ.get("SYMDIFF_UPDATE_GOLDEN") == "1"


@pytest.fixture
def staged():
    """SEEDS.md section 3: f(x, y) = (x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)."""
    x, y = sp.symbols("x y")
    expr = (x + 1 / (1 + sp.exp(-y))) / (1 / (1 + sp.exp(-x)) + (x + y) ** 2)
    return expr, x, y


@pytest.fixture
def golden():
    """Compare text with tests/golden/<name>; SYMDIFF_UPDATE_GOLDEN=1 rewrites the file."""

    def compare(name: str, text: str) -> None:
        path = GOLDEN / name
        if UPDATE:
            path.write_text(text, encoding="utf-8")
        assert path.exists(), f"missing golden file {path}: run with SYMDIFF_UPDATE_GOLDEN=1"
        assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"

    return compare
