"""The ``symdiff`` command line: generate, show and check backward code for a formula.

    symdiff gen EXPR [--wrt x,y] [--backend math|numpy|torch|jax|numba] [--name NAME] [-o FILE]
    symdiff show EXPR [--wrt x,y]
    symdiff check EXPR [--wrt x,y] [--samples N] [--seed S] [--domain x=-5:5,y=0:1]
    symdiff verify EXPR --grad FILE.py:FUNCTION [--forward FILE.py:FUNCTION] [--wrt x,y]
                   [--samples N] [--seed S] [--domain x=-5:5,y=0:1]
    symdiff graph EXPR [--wrt x,y] [--at x=2,y=-1] [-o graph.svg | graph.dot] [--html page.html]

EXPR is a formula string (parsed with a whitelist, never evaluated), or ``-`` to read it from
standard input. ``--wrt`` defaults to every symbol of the formula, by name. Exit status: 0 success,
1 a check found a mismatch or a hand gradient is wrong, 2 bad input (one line on stderr, never a
traceback), 3 an internal error of symdiff.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

from ._version import __version__
from .api import as_expression, declared_names, lower
from .backends import BACKENDS
from .check import check
from .dag import free_symbols
from .errors import SymdiffError
from .naming import natural_key
from .verify import verify

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class _BadInput(Exception):
    """A command-line usage error, reported like any other bad input."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage and exits; we want one line and exit 2
        raise _BadInput(message)


# gen's flags for the functions beyond the default forward, backward and value_and_grad
EXTRA_FUNCTIONS = {
    "jvp": "the values and their derivatives along a tangent (forward mode)",
    "jacobian": "the values and the Jacobian",
    "hvp": "the value, gradient and Hessian times a tangent (forward over reverse)",
    "hessian": "the value, gradient and Hessian",
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="symdiff", description="Readable, verified gradient code from a formula.")
    parser.add_argument("--version", action="version", version=f"symdiff {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{gen,show,check,verify,graph}")
    commands.required = True
    gen = commands.add_parser("gen", help="print or write the generated Python module")
    show = commands.add_parser("show", help="print the staged forward/backward program")
    check = commands.add_parser("check", help="check the generated gradient against sympy.diff")
    verify = commands.add_parser("verify", help="verify a hand-written gradient in your own file")
    graph = commands.add_parser("graph", help="draw the computational graph (DOT or SVG)")
    for sub in (gen, show, check, verify, graph):
        sub.add_argument("expr", help="the formula, e.g. 'x*sin(y)', or - to read stdin")
        sub.add_argument("--wrt", help="comma-separated symbols (default: all, by name)")
        sub.add_argument("--args", help="comma-separated parameter order of the functions")
    gen.add_argument("--backend", choices=BACKENDS, default="math")
    gen.add_argument("--name", help="prefix for the functions: NAME_forward, NAME_backward, ...")
    gen.add_argument("-o", "--output", help="write the module to this file instead of stdout")
    for extra, what in EXTRA_FUNCTIONS.items():
        gen.add_argument(f"--{extra}", action="store_true", help=f"also write {extra}: {what}")
    check.add_argument("--samples", type=int, default=None,
                       help="random points (default 20; 5 for formulas too large for sympy.diff)")
    check.add_argument("--seed", type=int, default=0, help="seed for the points (default 0)")
    verify.add_argument("--grad", required=True, metavar="FILE.py:FUNCTION",
                        help="your gradient: f(*args) -> partials, or backward(dout, cache)")
    verify.add_argument("--forward", metavar="FILE.py:FUNCTION",
                        help="forward(*args) -> (value, cache), when --grad is a backward")
    verify.add_argument("--samples", type=int, default=40, help="random points (default 40)")
    verify.add_argument("--seed", type=int, default=0, help="seed for the points (default 0)")
    for sub in (check, verify):
        sub.add_argument("--domain", metavar="x=LO:HI,...",
                         help="sample these variables uniformly in [LO, HI], e.g. u=-5:5,v=0:1")
    graph.add_argument("--at", help="a point, e.g. x=2,y=-1: values and gradients on the edges")
    graph.add_argument("-o", "--output",
                       help="write FILE.svg (rendered by Graphviz's dot) or FILE.dot; default: "
                            "DOT text on stdout")
    graph.add_argument("--html", metavar="FILE.html",
                       help="write the interactive page: inputs, live values and gradients, "
                            "step-through (starting at --at, default 1 for every argument)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        options = build_parser().parse_args(argv)
        return _run(options)
    except (_BadInput, SymdiffError) as exc:
        _fail(str(exc))
        return EXIT_BAD_INPUT
    except OSError as exc:
        _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _fail("interrupted")
        return EXIT_BAD_INPUT
    except Exception as exc:  # a bug in symdiff: still one line, never a traceback
        _fail(f"internal error ({type(exc).__name__}: {exc}); please report it")
        return EXIT_INTERNAL


def _run(options) -> int:
    text = sys.stdin.read() if options.expr == "-" else options.expr
    wrt = _names(options.wrt, "--wrt")
    expr = as_expression(text, declared_names(wrt or [], _names(options.args, "--args") or []))
    if wrt is None:
        wrt = sorted({s.name for s in free_symbols(expr)}, key=natural_key)
        if not wrt:
            raise _BadInput("the formula has no symbols: give --wrt")
    if options.command in ("check", "verify") and options.samples is not None \
            and options.samples < 1:
        raise _BadInput("--samples must be at least 1")
    prog = lower(expr, wrt=wrt, args=_names(options.args, "--args"))  # once, for every command
    return COMMANDS[options.command](options, expr, wrt, prog)


def _gen(options, expr, wrt, prog) -> int:
    extra = tuple(f for f in EXTRA_FUNCTIONS if getattr(options, f))
    functions = ("forward", "backward", "value_and_grad") + extra if extra else None
    _write(prog.source(options.backend, name=options.name, functions=functions), options.output)
    return EXIT_OK


def _show(options, expr, wrt, prog) -> int:
    print(prog)
    return EXIT_OK


def _check(options, expr, wrt, prog) -> int:
    report = check(prog, samples=options.samples, seed=options.seed,
                   domain=_domain(options.domain))
    print(report)
    return EXIT_OK if report.ok else EXIT_MISMATCH


def _graph(options, expr, wrt, prog) -> int:
    at = _point(options.at) if options.at else None
    if options.html:
        _write(prog.to_html(at), options.html)
        if not options.output:
            return EXIT_OK
    if options.output and options.output.endswith(".svg"):
        text = prog.to_svg(at)
    elif options.output and not options.output.endswith(".dot"):
        raise _BadInput(f"-o must name a .svg or a .dot file, got {options.output!r}")
    else:
        text = prog.to_dot(at)
    _write(text, options.output)
    return EXIT_OK


def _verify(options, expr, wrt, prog) -> int:
    forward = _load(options.forward) if options.forward else None
    report = verify(expr, wrt, _load(options.grad), args=_names(options.args, "--args"),
                    forward=forward, samples=options.samples, seed=options.seed,
                    domain=_domain(options.domain))
    print(report)
    return EXIT_OK if report.ok else EXIT_MISMATCH


COMMANDS = {"gen": _gen, "show": _show, "check": _check, "graph": _graph, "verify": _verify}


def _write(text: str, path: str | None) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def _point(text: str) -> dict[str, float]:
    """``x=2,y=-1`` -> {"x": 2.0, "y": -1.0} (numbers by float(), never evaluated)."""
    point = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise _BadInput(f"--at expects name=value pairs, got {item!r}")
        try:
            point[name.strip()] = float(value)
        except ValueError:
            raise _BadInput(f"--at: {value.strip()!r} is not a number (for {name.strip()})") \
                from None
    return point


def _domain(text: str | None) -> dict[str, tuple[float, float]] | None:
    """``u=-5:5,v=0:1`` -> {"u": (-5.0, 5.0), "v": (0.0, 1.0)} (checked again by the API)."""
    if text is None:
        return None
    domain = {}
    for item in text.split(","):
        name, sep, interval = item.partition("=")
        lo, colon, hi = interval.strip().partition(":")
        if not sep or not name.strip() or not colon:
            raise _BadInput(f"--domain expects name=LO:HI pairs, got {item!r}")
        try:
            domain[name.strip()] = (float(lo), float(hi))
        except ValueError:
            raise _BadInput(f"--domain: {interval.strip()!r} is not LO:HI with numbers "
                            f"(for {name.strip()})") from None
    return domain


def _load(spec: str):
    """The function FUNCTION of the user's file FILE.py (their code, run at their request)."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise _BadInput(f"expected FILE.py:FUNCTION, got {spec!r}")
    if not os.path.isfile(path):
        raise _BadInput(f"no such file: {path}")
    module_spec = importlib.util.spec_from_file_location("symdiff_user_gradient", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise _BadInput(f"{path} failed to load: {type(exc).__name__}: {exc}") from None
    function = getattr(module, name, None)
    if not callable(function):
        raise _BadInput(f"{path} has no function {name!r}")
    return function


def _names(text: str | None, option: str) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise _BadInput(f"{option} has an empty name: {text!r}")
    return names


def _fail(message: str) -> None:
    line = " ".join(str(message).split())  # one line, whatever the message held
    print(f"symdiff: error: {line}", file=sys.stderr)
