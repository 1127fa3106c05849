"""Lower a SymPy formula to the forward steps of a staged program, one step per gate.

The walk is over the expression DAG, iterative and memoised: each distinct subexpression becomes
at most one step, in a dependency-respecting order (operands in argument order, a quotient's
numerator before its denominator). Before the walk one rebuild makes every symbol real and turns
``1/(1 + exp(-t))`` into a sigmoid gate and ``log(1 + exp(t))`` into a softplus gate.

Gates: an Add is one weighted sum; a Mul is a chain of binary products ending with ``num*invden``
when it has a denominator; every other function (Max/Min of any number of operands too) is one
gate.
A Piecewise is one gate: subexpressions that are evaluated anyway, or that are safe to evaluate
everywhere (polynomials, sin, tanh, ...), are staged before it; the rest stay inline in its
branches, so an untaken branch is never evaluated in the math backend and its derivative is used
only where the branch is taken.
"""

from __future__ import annotations

from collections.abc import Callable

import mpmath
import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.core.relational import Relational
from sympy.functions.elementary.piecewise import ExprCondPair
from sympy.logic.boolalg import BooleanAtom, BooleanFunction

from . import naming, stable
from .dag import gate_key, postorder, rebuild
from .errors import UnsupportedFunctionError
from .functions import sigmoid
from .ir import Step
from .mpeval import values_at
from .ops import OPS
from .runtime import NAMED_CONSTANTS

# Number symbols the printers name; any other (sympy.physics' hbar) becomes its value.
_PRINTED_CONSTANTS = frozenset(NAMED_CONSTANTS) | {sp.pi, sp.E}
DIGITS = 50

# Gates that are defined and finite for every finite real input: safe to evaluate unconditionally
# (the sums and products, and the ops whose row says total).
_TOTAL = (sp.Add, sp.Mul) + tuple(op.cls for op in OPS if op.total)
_CONDITIONS = (Relational, BooleanAtom, BooleanFunction, ExprCondPair)
_UNSUPPORTED = (sp.Derivative, sp.Integral, sp.Subs, sp.Sum, sp.Product, sp.Limit, sp.Order)


def canonicalize(expr: sp.Expr, real: dict, folded: list | None = None) -> sp.Expr:
    """One rebuild: symbols -> their real versions, sigmoid patterns -> gates, fragile forms ->
    stable gates (``stable.py``; their notes go to the ``Lowerer.run`` of the result), nested
    constants -> their values (``_folds``; each appended to ``folded`` when it is a list)."""
    stabilize = stable.Stabilizer()
    folds = _folds(expr)
    if folded is not None:
        folded += list(folds)

    def swap(node, args):
        if node.is_Symbol:
            return real.get(node)
        if node in folds:
            return folds[node]
        if node.is_NumberSymbol and node not in _PRINTED_CONSTANTS:  # hbar: its value
            return sp.Float(node.evalf(DIGITS), DIGITS)
        if isinstance(node, sp.Pow) and _integral_float(args[1]):  # x**2.0 is x**2 (real)
            return sp.Pow(args[0], sp.Integer(int(args[1])), evaluate=False)
        if isinstance(node, ExprCondPair) and _not_real_branch(args[0]):
            return ExprCondPair(sp.nan, args[1])  # undefined where this branch is taken
        if isinstance(node, sp.beta) and len(args) == 2:  # sympy.stats writes beta(a, b)
            a, b = args
            return sp.gamma(a) * sp.gamma(b) / sp.gamma(a + b)
        if isinstance(node, sp.Pow) and args[1] == -1:
            t = _exp_plus_one(args[0])
            if t is not None:
                return sigmoid(-t)
        return stabilize(node, args)

    # Same structure, new leaves: nothing to evaluate (and Add/Mul keep their order).
    canonical = rebuild(expr, swap, evaluate=False)
    stable.hand_over(canonical, stabilize.notes)
    return canonical


def _folds(expr: sp.Expr) -> dict[sp.Basic, sp.Float]:
    """Each largest constant with a function of a function in it (log(cosh(erfc(E))), in
    ``x*log(cosh(erfc(E)))**3``) -> its value at DIGITS digits. Float code computing it step by
    step can lose digits to cancellation (cosh(1.1e-4) = 1 + 6e-9, whose log then keeps 8); the
    lowering computes it once. Numbers, named constants and single functions of them
    (sqrt(2/pi), log(2), exp(-pi/2)) stay as written, and so does a constant whose value is
    not a finite real (refused, or an undefined branch, later)."""
    const: dict[sp.Basic, bool] = {}
    nested: dict[sp.Basic, int] = {}  # depth of function applications
    largest = []
    nodes = postorder(expr)
    for n in nodes:
        const[n] = all(const[a] for a in n.args) if n.args else n.is_number is True
        below = max((nested[a] for a in n.args), default=0)
        nested[n] = below + isinstance(n, sp.Function)
        if not const[n]:
            largest += [a for a in n.args if const[a] and nested[a] > 1]
    if const[expr] and nested[expr] > 1:
        largest.append(expr)
    folds = {}
    for c in largest:
        with mpmath.workdps(DIGITS):
            value = values_at([c], {})[0]
        if isinstance(value, mpmath.mpf) and mpmath.isfinite(value):
            folds[c] = sp.Float(value, DIGITS)
    return folds


def _not_real_branch(e: sp.Basic) -> bool:
    """A branch value that is not real wherever it is taken: SymPy folded it to zoo or nan, or
    it has a complex number in it (``cot(pi)``, ``(-1)**0.5``, ``log(x, -1) = -I*log(x)/pi``,
    ``x*asech(E)``), or a negative base to a variable power (``(-1)**z``, real at integers only).

    The branch is kept as nan: the formula is undefined where it is taken and defined elsewhere
    (``Piecewise((cot(pi), y > 0), (pi, True))`` is pi for y <= 0), as a Piecewise with no
    branch for a point is, and as any complex intermediate is (only real values are supported).
    An inner Piecewise is not entered: its own branches are judged where they are rebuilt.
    """
    if e is sp.nan:
        return False
    const: dict[sp.Basic, bool] = {}
    for n in postorder(e, stop=lambda n: isinstance(n, sp.Piecewise)):
        if n is sp.I or n is sp.zoo or n is sp.nan:
            return True
        if isinstance(n, sp.Piecewise):
            const[n] = False
            continue
        const[n] = all(const[a] for a in n.args) if n.args else n.is_number is True
        if const[n] and n.args and n.is_extended_real is False:
            return True
        if n.is_Pow and const[n.base] and n.base.is_negative and not const[n.exp]:
            return True
    return False


def _integral_float(e: sp.Basic) -> bool:
    """A float exponent with an integer value (``x**2.0``): Python computes it for x < 0. The
    value itself, not its double: a folded constant 2 - 3e-21 is not 2 (int() of it is 1)."""
    return e.is_Float and e.is_finite and abs(e) <= 2**53 and sp.Rational(e).is_Integer


def _exp_plus_one(node: sp.Basic) -> sp.Expr | None:
    """``u`` when ``node`` is ``1 + exp(u)``."""
    if (isinstance(node, sp.Add) and len(node.args) == 2 and node.args[0] == 1
            and isinstance(node.args[1], sp.exp)):
        return node.args[1].args[0]
    return None


class Lowerer:
    """Turns the nodes of one canonical expression into forward steps."""

    def __init__(self, namer: naming.Namer, inputs: dict[sp.Symbol, sp.Symbol]):
        self.namer = namer
        self.value: dict[sp.Basic, sp.Expr] = dict(inputs)  # node -> step symbol or constant
        self.steps: list[Step] = []
        self.hint: dict[sp.Basic, str] = {}  # role names: "num", "den"
        self.by_rhs: dict[sp.Basic, sp.Symbol] = {}  # value numbering of built right-hand sides
        self.plans: dict[sp.Basic, tuple[list, Callable]] = {}

    def run(self, root: sp.Expr, out: str = "out") -> list[Step]:
        """Lower ``root``; its value is the last step, named ``out``. Called again with
        another root and name (a vector of outputs), it extends the same steps: a value computed
        for an earlier output is reused, and an output that is one gets a copy step."""
        lowered_before = root in self.value
        self._analyse(root)
        self.root, self.out = root, out
        self.notes = stable.take_notes(root)  # canonical gate -> the stable rewrite it came from
        stack = [(root, False)]
        while stack:
            node, ready = stack.pop()
            if node in self.value:
                continue
            operands, build = self._plan(node)
            if ready:
                self.value[node] = build()
                del self.plans[node]  # a plan's closure is never needed again: free it
                continue
            stack.append((node, True))
            stack.extend((o, False) for o in reversed(operands) if o not in self.value)
        last = self.steps[-1].name if self.steps else None
        if (getattr(self.value[root], "name", None) != last or root in self.constant
                or lowered_before):
            self._emit("out", self.value[root], "copy", exact=True)  # out = x, out = 3
        return self.steps

    # -- analysis ---------------------------------------------------------------------------

    def _analyse(self, root: sp.Expr) -> None:
        """Constants, total nodes, and nodes evaluated on every path (not only inside a branch)."""
        self.constant: set[sp.Basic] = set()
        self.total: set[sp.Basic] = set()
        self.known: set[sp.Basic] = set()
        nodes = self._classify(root)
        if any(isinstance(n, sp.Piecewise) for n in nodes):
            self.unconditional = set(postorder(root, stop=lambda n: isinstance(n, sp.Piecewise)))
        else:  # no branches: every node is evaluated on every path
            self.unconditional = set(nodes)

    def _classify(self, root: sp.Basic) -> list[sp.Basic]:
        """Mark the nodes below ``root`` not seen before as constant and/or total."""
        known = self.known
        nodes = postorder(root, stop=(lambda n: n in known) if known else None)
        for node in nodes:
            if node in self.known:
                continue
            self.known.add(node)
            _reject(node, branch=node is sp.nan and node is not root)
            if not isinstance(node, ExprCondPair) and any(a is sp.nan for a in node.args):
                _reject(sp.nan)  # nan only as a branch value (an undefined branch), see above
            if node.is_Symbol:
                self.total.add(node)
            elif not node.args or all(a in self.constant for a in node.args):
                if node.args and (node.is_extended_real is False or (  # asech(E) = 1.194*I
                        node.is_extended_real is None and _complex_value(node))):
                    raise UnsupportedFunctionError(
                        f"the formula is not real: {_short(node)} is a complex number; only "
                        "real values are supported")
                self.constant.add(node)
                self.total.add(node)
            elif _is_total_gate(node) and all(a in self.total for a in node.args):
                self.total.add(node)
        return nodes

    def _staged(self, node: sp.Basic) -> bool:
        if node in self.constant or node.is_Atom or isinstance(node, _CONDITIONS):
            return False
        return node in self.unconditional or node in self.total

    # -- plans: (operands to lower first, build() -> value) -----------------------------------

    def _plan(self, node: sp.Basic) -> tuple[list, Callable]:
        if node not in self.known:  # built by a plan (a shared denominator, a term's rest)
            self._classify(node)
        if node not in self.plans:
            self.plans[node] = self._make_plan(node)
        return self.plans[node]

    def _make_plan(self, node: sp.Basic) -> tuple[list, Callable]:
        if node in self.constant:
            return [], lambda: node
        if isinstance(node, sp.Add):
            return self._plan_add(node)
        if isinstance(node, sp.Mul):
            return self._plan_mul(node)
        if isinstance(node, sp.Pow):
            return self._plan_pow(node)
        if isinstance(node, sp.Piecewise):
            return self._plan_piecewise(node)
        if isinstance(node, (sp.Max, sp.Min)):
            return self._plan_extremum(node)
        if isinstance(node, sp.Function):
            return self._plan_function(node)
        raise UnsupportedFunctionError(f"cannot lower {type(node).__name__}: {_short(node)}")

    def _plan_add(self, node: sp.Add):
        terms = [t.as_coeff_Mul() if t not in self.constant else (t, None) for t in node.args]
        operands = [rest for _, rest in terms if rest is not None]

        def build():
            rhs = [c if rest is None else _scaled(c, self.value[rest]) for c, rest in terms]
            role = self.hint.get(node)
            names = [(c, None if rest is None else self._name(rest)) for c, rest in terms]
            name = role or naming.add_name(names)
            products = sum(isinstance(r, sp.Mul) for r in operands)
            if len(name) > naming.MAX_LEN and products >= 2:
                name = "dot"  # w0*x0 + w1*x1 + w2, as people write it by hand
            return self._emit(name, sp.Add(*rhs, evaluate=False), "add", stem="sum", node=node)

        return operands, build

    def _plan_mul(self, node: sp.Mul):
        coeff = sp.S.One
        numer, denom = [], []
        for f in node.args:
            if f in self.constant:
                coeff *= f
            elif isinstance(f, sp.Pow) and f.exp.is_Number and f.exp < 0:
                denom.append(f)
            else:
                numer.append(f)
        if len(numer) == 1 and denom and isinstance(numer[0], sp.Add):
            self.hint.setdefault(numer[0], "num")
        if len(denom) == 1 and isinstance(denom[0].base, sp.Add):  # x/den, x/sqrt(den)
            self.hint.setdefault(denom[0].base, "den")
        if len(denom) > 1:  # one denominator for all: a/(b*c) -> bc = b*c; invbc = 1/bc
            den = sp.Mul(*(f.base ** -f.exp for f in denom))
            denom = [sp.Pow(den, -1, evaluate=False)]
        operands = numer + denom
        return operands, lambda: self._build_product(node, coeff, operands)

    def _build_product(self, node, coeff, operands):
        values = [self.value[o] for o in operands]
        if len(values) == 1:
            name = naming.scale_name(coeff, self._name(operands[0]))
            return self._emit(name, coeff * values[0], "scale", stem="scaled", node=node)
        acc, acc_name = values[0], self._name(operands[0])
        mean = naming.mean_name(operands, self._name) if coeff == 1 else None
        for k, (o, v) in enumerate(zip(operands[1:], values[1:]), start=2):
            name = mean or acc_name + self._name(o)
            if k < len(values):
                acc = self._emit(name, sp.Mul(acc, v, evaluate=False), "mul", stem="prod")
            else:
                if coeff != 1 and not mean:
                    name = naming.scale_name(coeff, name)  # 3*x*y is threexy, not xy
                factors = (acc, v) if coeff == 1 else (coeff, acc, v)
                acc = self._emit(name, sp.Mul(*factors, evaluate=False), "mul", stem="prod",
                                 node=node)
            acc_name = acc.name
        return acc

    def _plan_pow(self, node: sp.Pow):
        base, exp = node.args
        operands = [a for a in (base, exp) if a not in self.constant]

        def build():
            b, e = (self.value.get(a, a) for a in (base, exp))
            name = naming.pow_name(self._name(base) if base in self.value else None, exp,
                                   self._name(exp) if exp in self.value else None, base)
            # A power of an argument keeps its name whole (thetadotsqr), however long.
            limit = len(name) if base.is_Symbol and exp in self.constant else naming.MAX_LEN
            return self._emit(name, sp.Pow(b, e, evaluate=False), "pow",
                              stem=naming.POW_STEMS.get(exp, "pow"), node=node, limit=limit)

        return operands, build

    def _plan_extremum(self, node):
        operands = [a for a in node.args if a not in self.constant]

        def build():
            stem = naming.STEMS[node.func]
            values = [self.value.get(a, a) for a in node.args]
            if len(values) > 2:  # one gate: a tie of three splits 1/3 each (a chain: 1/4, 1/4, 1/2)
                name = stem + "".join(self._name(a) for a in node.args)
                return self._emit(name, node.func(*values, evaluate=False), stem, stem=stem,
                                  node=node)
            acc, acc_name = values[0], None
            acc_name = self._name(node.args[0])
            for k, a in enumerate(node.args[1:], start=2):
                name = stem + acc_name.removeprefix(stem) + self._name(a)
                rhs = node.func(acc, self.value.get(a, a), evaluate=False)
                acc = self._emit(name, rhs, stem, stem=stem,
                                 node=node if k == len(node.args) else None)
                acc_name = acc.name
            return acc

        return operands, build

    def _plan_function(self, node: sp.Function):
        operands = [a for a in node.args if a not in self.constant]

        def build():
            rhs = node.func(*(self.value.get(a, a) for a in node.args), evaluate=False)
            name, stem = naming.function_name(node.func, "".join(self._name(a) for a in operands))
            return self._emit(name, rhs, type(node).__name__.lower(), stem=stem, node=node)

        return operands, build

    def _plan_piecewise(self, node: sp.Piecewise):
        inside = postorder(node, stop=lambda n: n is not node and (self._staged(n) or n.is_Atom))
        operands = [n for n in inside if n is not node and self._staged(n)]

        def build():
            mapping = {n: self.value[n] for n in operands}
            mapping.update((n, self.value[n]) for n in inside if n.is_Symbol)
            rhs = rebuild(node, lambda n, args: mapping.get(n), stop=lambda n: n in mapping)
            stem = naming.STEMS[sp.Piecewise]
            name = stem + "".join(self._name(o) for o in operands)
            return self._emit(name, rhs, "piecewise", stem=stem, node=node)

        return operands, build

    # -- steps and names --------------------------------------------------------------------

    def _emit(self, name, rhs, op, stem="t", node=None, exact=False,
              limit=naming.MAX_LEN) -> sp.Symbol:
        """Append ``name = rhs`` (or reuse an equal earlier step) and return its symbol."""
        key = None if exact else gate_key(rhs)
        if key is not None and key in self.by_rhs and node is not self.root:
            return self.by_rhs[key]
        if node is self.root or exact:
            name = self.namer.claim(self.out)
        else:
            name = self.namer.step(name, stem, limit)
        symbol = sp.Symbol(name, real=True)
        note = stable.note_text(self.notes[node], self.value) if node in self.notes else ""
        self.steps.append(Step(name, rhs, op, symbol, note))
        if key is not None:
            self.by_rhs[key] = symbol
        return symbol

    def _name(self, node: sp.Basic) -> str:
        value = self.value.get(node, node)
        if isinstance(value, sp.Symbol):
            return value.name
        return naming.number_name(value)


def _scaled(c: sp.Basic, value: sp.Basic) -> sp.Basic:
    """``c*value`` as a term of a sum gate, without SymPy's simplification (hot for big sums)."""
    if c == 1:
        return value
    if value.is_Number:
        return c * value
    return sp.Mul(c, value, evaluate=False)


def _reject(node: sp.Basic, *, branch: bool = False) -> None:
    if node is sp.zoo or node is sp.nan and not branch:
        raise UnsupportedFunctionError(
            f"the formula is undefined everywhere: SymPy folds part of it to {node} "
            "(a division by zero such as x/(x - x), or 0/0)")
    if node is sp.I:
        raise UnsupportedFunctionError(
            "the formula is not real: SymPy evaluates part of it to a complex number (such as "
            "log(-1) = I*pi); only real values are supported")
    if isinstance(node, AppliedUndef):
        raise UnsupportedFunctionError(
            f"{_short(node)} is an undefined function: give it a formula to differentiate")
    if isinstance(node, _UNSUPPORTED):
        raise UnsupportedFunctionError(
            f"{type(node).__name__} is not supported ({_short(node)}): evaluate it first")
    if isinstance(node, sp.MatrixBase) or getattr(node, "is_Matrix", False):
        raise UnsupportedFunctionError(f"matrix expressions are not supported yet: {_short(node)}")


def _is_total_gate(node: sp.Basic) -> bool:
    if isinstance(node, sp.Pow):
        return node.exp.is_Integer and node.exp >= 0
    return isinstance(node, _TOTAL)


def _complex_value(node: sp.Expr) -> bool:
    """A constant SymPy cannot tell real, evaluated: ``(-1)**GoldenRatio`` = 0.362 - 0.932*I."""
    if not isinstance(node, sp.Expr):
        return False  # a branch pair or a condition: its parts are judged on their own
    try:
        value = complex(node.evalf(30))
    except (TypeError, ValueError, ArithmeticError, AttributeError):
        return False  # not a number SymPy can evaluate: left to the gates' own checks
    return value.imag != 0 and abs(value.imag) > 1e-15 * max(1.0, abs(value.real))


def _short(node: sp.Basic, limit: int = 60) -> str:
    text = sp.sstr(node) if len(postorder(node)) < 200 else type(node).__name__ + "(...)"
    return text if len(text) <= limit else text[: limit - 3] + "..."
