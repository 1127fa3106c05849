"""The interactive backprop page (page.py): its file, and the page itself in a real browser.

The browser tests open the page in headless Chromium (Debian's ``chromium`` and
``chromium-driver``) through Selenium and the system ``chromedriver`` (no driver downloads, no
usage statistics); they skip where either is missing. One browser session serves the module.
Every number read from the DOM is compared with an independent value: the math backend's
value_and_grad, the program at 50 digits (``Program.evaluate``), or the seed articles' numbers.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil

import numpy as np
import pytest
import sympy as sp

import symdiff
from symdiff.cli import main
from symdiff.errors import SymdiffError
from symdiff.functions import sigmoid

ROOT = pathlib.Path(__file__).resolve().parent.parent
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is absent")
REL = 1e-12
x, y = sp.symbols("x y", real=True)
STAGED = (x + sigmoid(y)) / (sigmoid(x) + (x + y) ** 2)
price, count, tax = sp.symbols("price count tax", real=True)
w0, w1, w2, x0, x1 = sp.symbols("w0 w1 w2 x0 x1", real=True)
NEURON = sigmoid(w0 * x0 + w1 * x1 + w2)


def _staged():
    return symdiff.lower(STAGED, wrt=[x, y])


@needs_dot
def test_page_is_one_small_offline_file():
    page = _staged().to_html(at={x: 2, y: -1})
    assert len(page.encode()) < 300_000
    assert not re.search(r"<script[^>]*\ssrc=|<link|@import|url\((?!#)", page)
    assert set(re.findall(r"https?://[^\s\"')]+", page)) <= {"http://www.w3.org/2000/svg"}
    for name in ("x", "y"):
        assert f'<input type="number" name="{name}"' in page
    for button in ("step-forward", "step-backward", "reset"):
        assert f'id="{button}"' in page
    for step in ["x", "y", *(s.name for s in _staged().forward)]:
        assert f'data-step="{step}"' in page


def _layer():
    """A matrix layer (a linear map and a squared loss) and arrays to show it at."""
    X, W = sp.MatrixSymbol("X", 4, 3), sp.MatrixSymbol("W", 3, 2)
    rng = np.random.default_rng(18)
    return (symdiff.lower(sp.Trace((X * W).T * (X * W)), wrt=[W]),
            {"X": rng.normal(size=(4, 3)), "W": rng.normal(size=(3, 2))})


@needs_dot
def test_the_readme_screenshot_is_small():
    assert (ROOT / "docs" / "page.png").stat().st_size < 150_000


def test_matrix_pages_need_their_arrays_and_formulas_javascript_cannot_compute_are_refused():
    with pytest.raises(SymdiffError, match="at given arrays"):
        _layer()[0].to_html()
    with pytest.raises(SymdiffError, match="gamma"):
        symdiff.lower(sp.gamma(x) * y, wrt=[x, y]).to_html(at={x: 1, y: 2})


@needs_dot
def test_cli_writes_the_page(tmp_path):
    out = tmp_path / "page.html"
    assert main(["graph", "x*y + sin(x)", "--wrt", "x,y", "--at", "x=2,y=-1",
                 "--html", str(out)]) == 0
    assert '<input type="number" name="x"' in out.read_text()


# -- in the browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None or shutil.which("dot") is None:
        pytest.skip("needs chromium, chromedriver and Graphviz's dot")
    os.environ.setdefault("SE_AVOID_STATS", "true")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1700,800"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def _open(browser, tmp_path, prog, at):
    path = tmp_path / "page.html"
    path.write_text(prog.to_html(at=at), encoding="utf-8")
    browser.get(path.as_uri())


def _labels(browser) -> dict[str, tuple[float, float | None]]:
    """data-step -> (data-value, data-grad) of every node label."""
    pairs = browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-step]')).map((g) => "
        "[g.dataset.step, g.dataset.value, g.dataset.grad]);")
    return {s: (float(v), float(g) if g else None) for s, v, g in pairs}


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= REL * max(abs(a), abs(b), 1e-300)


def _current(browser) -> list[str]:
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-step].current'))"
        ".map((g) => g.dataset.step);")


def test_values_and_gradients_follow_the_inputs(browser, tmp_path):
    prog = _staged()
    _open(browser, tmp_path, prog, {x: 2, y: -1})
    labels = _labels(browser)
    exact = prog.evaluate({x: 2, y: -1})
    for name, (value, grad) in labels.items():
        assert _close(value, exact[name]), name
        gname = prog.inputs[prog.args.index(name)].grad if name in prog.args else "d" + name
        assert grad is not None and _close(grad, exact[gname]), name
    box = browser.find_element("css selector", 'input[type="number"][name="x"]')
    box.clear()
    box.send_keys("0.5")
    labels = _labels(browser)
    value, (dx, dy) = prog.compile("math").value_and_grad(0.5, -1.0)
    assert _close(labels["out"][0], value)
    assert _close(labels["x"][1], dx) and _close(labels["y"][1], dy)


def test_step_through_highlights_the_current_step(browser, tmp_path):
    prog = _staged()
    _open(browser, tmp_path, prog, {x: 2, y: -1})
    click = {b: browser.find_element("id", b) for b in ("step-forward", "step-backward", "reset")}
    assert _current(browser) == []
    for step in prog.forward[:3]:
        click["step-forward"].click()
        assert _current(browser) == [step.name]
        line = browser.find_element("css selector", "#code .current-line").text
        assert line.strip().startswith(f"{step.name} = ")
    for g in prog.backward[:4]:
        click["step-backward"].click()
        assert _current(browser) == [g.source]
        operand = {i.grad: i.name for i in prog.inputs}.get(g.name, g.name[1:])
        edge = browser.find_element("css selector", ".edge.active")
        assert (edge.get_attribute("data-from"), edge.get_attribute("data-to")) == (
            operand, g.source)
        line = browser.find_element("css selector", "#code .current-line").text.strip()
        assert line.startswith(f"{g.name} {'+=' if g.accumulate else '='} ")
        if g.name == "dden":  # the rule of invden = 1/den, as the page writes it
            assert "d invden/d den = -invden²" in browser.find_element("id", "explain").text
    explain = browser.find_element("id", "explain").text
    assert "local derivative" in explain
    fork = next(k for k, g in enumerate(prog.backward) if g.accumulate)
    for _ in range(fork - 3):
        click["step-backward"].click()
    assert "+=" in browser.find_element("id", "explain").text
    browser.save_screenshot(str(tmp_path / "staged.png"))
    assert (tmp_path / "staged.png").stat().st_size > 10_000
    click["reset"].click()
    assert _current(browser) == []


def test_the_apples_and_the_neuron(browser, tmp_path):
    prog = symdiff.lower(price * count * tax, wrt=[price, count, tax])
    _open(browser, tmp_path, prog, {price: 100, count: 2, tax: 1.1})
    text = browser.find_element("id", "graph").text
    for shown in ("= 220", "dprice = 2.2", "dcount = 110", "dtax = 200", "1.1"):
        assert shown in text
    labels = _labels(browser)
    assert _close(labels["out"][0], 220.0) and _close(labels["price"][1], 2.2)
    assert _close(labels[prog.forward[0].name][1], 1.1)  # price*count
    prog = symdiff.lower(NEURON, wrt=[w0, w1, w2, x0, x1])
    _open(browser, tmp_path, prog, {w0: 2, w1: -3, w2: -3, x0: -1, x1: -2})
    labels = _labels(browser)
    assert _close(labels["out"][0], 0.7310585786300049)
    seeds = {"x0": 0.3932238664829637, "x1": -0.5898357997244456, "w0": -0.19661193324148185,
             "w1": -0.3932238664829637, "w2": 0.19661193324148185}
    for name, grad in seeds.items():
        assert abs(labels[name][1] - grad) <= 1e-15, name


def test_names_javascript_reserves(browser, tmp_path):
    a, b = sp.symbols("var constructor", real=True)
    prog = symdiff.lower(a * sp.exp(b) + a**2, wrt=[a, b])
    _open(browser, tmp_path, prog, {a: 1.5, b: -0.5})
    labels = _labels(browser)
    value, grads = prog.compile().value_and_grad(1.5, -0.5)
    assert _close(labels["out"][0], value)
    assert [labels[n][1] for n in prog.args] == pytest.approx(list(grads), rel=REL)


def test_a_matrix_layer_shows_shapes_and_its_gradient(browser, tmp_path):
    prog, at = _layer()
    _open(browser, tmp_path, prog, at)
    grad = browser.execute_script("return document.querySelector('[data-step=\"W\"]')"
                                  ".dataset.grad;")
    expected = prog.compile("numpy").value_and_grad(at["W"], at["X"])[1][0]
    assert np.allclose(np.array(json.loads(grad)), expected, rtol=REL, atol=0)
    text = browser.find_element("id", "graph").text
    assert "3×2 [" in text and "4×3 [" in text and "‖" in text
    browser.find_element("id", "step-backward").click()
    assert _current(browser) == [prog.backward[0].source]
