"""The computational graph: DOT structure, the worked numbers on the right edges, SVG via dot."""

import re
import shutil
import xml.etree.ElementTree as ET

import pytest
import sympy as sp

import symdiff
from symdiff import cli, graph

NODE = re.compile(r'^\s*"(\w+)" \[(?:shape=plaintext, )?label=<(.*)>\];$')
EDGE = re.compile(r'^\s*"(\w+)" -> "(\w+)"(?: \[label=<(.*)>\])?;$')
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (.ci/run installs it)")


def parse_dot(text):
    """{node: label}, {(tail, head): [numbers on the edge, top to bottom]}."""
    nodes, edges = {}, {}
    for line in text.splitlines():
        if m := NODE.match(line):
            nodes[m.group(1)] = m.group(2)
        elif m := EDGE.match(line):
            numbers = re.findall(r">(-?[\d.e+-]+)</font>", m.group(3) or "")
            edges[(m.group(1), m.group(2))] = [float(n) for n in numbers]
    return nodes, edges


@pytest.fixture
def apples():
    price, count, tax = sp.symbols("price count tax")
    prog = symdiff.lower(price * count * tax, wrt=[price, count, tax])
    return prog, {price: 100, count: 2, tax: 1.1}


def test_structure_without_a_point(staged):
    expr, x, y = staged
    prog = symdiff.lower(expr, wrt=[x, y])
    nodes, edges = parse_dot(prog.to_dot())
    assert len(nodes) == len(prog.forward) + len(prog.args)  # steps plus inputs
    assert all(numbers == [] for numbers in edges.values())
    assert ("x", "xpy") in edges and ("den", "invden") in edges and ("sigy", "num") in edges
    assert len(edges) == sum(len(graph._operands(s)) for s in prog.forward)


def test_apples_draw_the_worked_numbers(apples):
    prog, at = apples
    nodes, edges = parse_dot(prog.to_dot(at=at))
    assert len(nodes) == 5
    middle = prog.forward[0].name  # price*count
    # value on top, gradient below: SEEDS.md section 2
    assert edges[("price", middle)] == pytest.approx([100, 2.2])
    assert edges[("count", middle)] == pytest.approx([2, 110])
    assert edges[(middle, "out")] == pytest.approx([200, 1.1])
    assert edges[("tax", "out")] == pytest.approx([1.1, 200])
    assert "= 220" in nodes["out"] and "dout = 1" in nodes["out"]
    assert "dprice = 2.2" in nodes["price"]


def test_fork_edges_add_up_to_the_gradient(staged):
    expr, x, y = staged
    prog = symdiff.lower(expr, wrt=[x, y])
    _, edges = parse_dot(prog.to_dot(at={x: 3, y: -4}))
    shares = [numbers[1] for (tail, _), numbers in edges.items() if tail == "x"]
    assert len(shares) == 3  # x feeds sigx, xpy and num
    dx = float(sp.diff(expr, x).subs({x: 3, y: -4}))
    assert sum(shares) == pytest.approx(dx, rel=1e-5)


def test_labels_are_escaped():
    x = sp.Symbol("x")
    dot = symdiff.lower(sp.Piecewise((x**2, x < 1), (2 * x, True)), wrt=[x]).to_dot()
    assert "x &lt; 1" in dot and "x < 1" not in dot


@needs_dot
def test_svg_is_rendered_by_dot(apples):
    prog, at = apples
    svg = prog.to_svg(at=at)
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for number in ("100", "2.2", "110", "200", "1.1", "= 220"):
        assert number in texts
    html = prog._repr_html_()  # Jupyter: listing, picture and code
    assert "<svg" in html and "<?xml" not in html and "out = countprice*tax" in html
    assert "def value_and_grad(price, count, tax):" in html


def test_missing_dot_is_a_clear_error(apples, monkeypatch):
    prog, at = apples
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    with pytest.raises(symdiff.MissingToolError, match="apt-get install graphviz"):
        prog.to_svg(at=at)
    html = prog._repr_html_()  # Jupyter then shows the listing and the code, no picture
    assert "<svg" not in html and "backward:" in html and "def backward" in html


def test_graph_command(tmp_path, capsys):
    assert cli.main(["graph", "price*count*tax", "--at", "price=100,count=2,tax=1.1"]) == 0
    _, edges = parse_dot(capsys.readouterr().out)
    assert edges[("tax", "out")] == pytest.approx([1.1, 200])
    target = tmp_path / "g.dot"
    assert cli.main(["graph", "x*y", "-o", str(target)]) == 0 and "digraph" in target.read_text()


@pytest.mark.parametrize("argv,fragment", [
    (["graph", "x*y", "--at", "x=1"], "no value for y"),
    (["graph", "x*y", "--at", "x=1,y=two"], "not a number"),
    (["graph", "x*y", "--at", "x"], "name=value"),
    (["graph", "x*y", "-o", "g.png"], ".svg or a .dot"),
])
def test_graph_command_bad_input(capsys, argv, fragment):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


@needs_dot
def test_readme_picture_is_the_documented_command(tmp_path):
    import pathlib

    root = pathlib.Path(__file__).parent.parent
    readme = (root / "README.md").read_text()
    command = re.search(r"symdiff graph (.*) -o docs/staged_graph\.svg", readme).group(0)
    assert "docs/staged_graph.svg" in readme and (root / "docs" / "staged_graph.svg").exists()
    committed = (root / "docs" / "staged_graph.svg").read_text()
    for number in ("2.05957", "1.59223", "1.54564"):  # dx, dy, the value at x=3, y=-4
        assert number in committed
    assert "--at x=3,y=-4" in command
