"""Program's hand-offs: connect the methods of ``ir.Program`` to the stages that implement them.

``ir`` is the ground every stage builds on, so it imports none of them; ``prog.source(...)``,
``prog.compile(...)``, ``prog.evaluate(...)``, ``prog.to_dot(...)``, ``prog.to_svg(...)`` (and so
Jupyter's ``_repr_html_``) and the NumPy notation of a matrix listing call the function registered
here under their name (``ir.HANDOFFS`` lists them; ``ir.service`` looks one up). The package face
imports this module before anything else, so every hand-off is registered whichever part of
symdiff a user imports (Python runs ``symdiff/__init__.py`` first).
"""

from __future__ import annotations

from . import ir
from .emit import compile_module, default_backend, module_source
from .graph import to_dot, to_svg
from .interpret import program_values
from .page import to_html
from .printers import make_printer

ir.register(source=module_source, compile=compile_module, evaluate=program_values,
            to_dot=to_dot, to_svg=to_svg, to_html=to_html, make_printer=make_printer,
            default_backend=default_backend)
