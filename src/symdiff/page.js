// The interactive backprop page's script (page.py inlines it after the program's own module,
// whose trace() computes every number). Reads the page's data (the JSON in #symdiff-data),
// recomputes on every input, and steps through the forward and backward lines.
(function () {
    "use strict";
    const D = JSON.parse(document.getElementById("symdiff-data").textContent);
    const nodes = D.nodes.map((_, k) => document.getElementById("n" + k));
    const edges = D.edges.map((_, k) => document.getElementById("e" + k));
    const boxes = D.args.map((a) => document.querySelector(
        'input[type="number"][name="' + CSS.escape(a) + '"]'));
    const sliders = D.args.map((a) => document.querySelector(
        'input[type="range"][data-for="' + CSS.escape(a) + '"]'));
    const codeLines = Array.from(document.querySelectorAll("#code .line"));
    const explain = document.getElementById("explain");
    let T = null;  // the current trace: values, terms, grads, locals
    let phase = null;  // null, "forward" or "backward"
    let index = -1;  // the current line of that phase

    // A number as the page shows it: 6 significant digits, trailing zeros dropped; an array
    // (a matrix program's, computed when the page was written) as its summary.
    function fmt(v) {
        if (v !== null && typeof v === "object") {
            return v.text;
        }
        if (!Number.isFinite(v)) {
            return Number.isNaN(v) ? "undefined" : (v > 0 ? "inf" : "-inf");
        }
        const a = Math.abs(v);
        if (a !== 0 && (a >= 1e6 || a < 1e-4)) {
            return v.toExponential(5).replace(/\.?0+e/, "e");
        }
        return String(parseFloat(v.toPrecision(6)));
    }

    // The full-precision number behind what is shown (an array: its entries as JSON).
    function full(v) {
        return v !== null && typeof v === "object" ? v.data : String(v);
    }

    function setText(g, cls, text) {
        const t = g.querySelector("text." + cls);
        if (t) {
            t.textContent = text;
        }
    }

    function grad(k) {
        const gi = D.nodes[k].gi;
        return gi === null ? null : T.grads[gi];
    }

    function compute() {
        T = D.static || trace(...boxes.map((b) => parseFloat(b.value)), 1.0);
        D.nodes.forEach((n, k) => {
            const v = T.values[k];
            const g = grad(k);
            nodes[k].setAttribute("data-value", full(v));
            nodes[k].setAttribute("data-grad", g === null ? "" : full(g));
            setText(nodes[k], "value", "= " + fmt(v));
            if (n.grad) {
                setText(nodes[k], "grad", n.grad + " = " + (g === null ? "\u2013" : fmt(g)));
            }
        });
        D.edges.forEach((e, k) => {
            const v = T.values[e.from];
            edges[k].setAttribute("data-value", full(v));
            setText(edges[k], "value", fmt(v));
            const t = e.term === null ? null : T.terms[e.term];
            edges[k].setAttribute("data-grad", t === null ? "" : full(t));
            setText(edges[k], "grad", t === null ? "" : fmt(t));
        });
        show();
    }

    function clear() {
        document.querySelectorAll(".current, .active, .pending, .pending-grad, .current-line")
            .forEach((el) => el.classList.remove("current", "active", "pending", "pending-grad",
                                                 "current-line"));
    }

    function mark(line) {
        const el = codeLines[line];
        el.classList.add("current-line");
        const pane = el.parentElement;  // scroll the code alone, never the page
        if (el.offsetTop < pane.scrollTop || el.offsetTop + el.offsetHeight >
                pane.scrollTop + pane.clientHeight) {
            pane.scrollTop = el.offsetTop - pane.clientHeight / 2;
        }
    }

    function showForward(k) {
        const f = D.forward[k];
        const n = D.nodes[f.node];
        nodes[f.node].classList.add("current");
        D.edges.forEach((e, j) => {
            if (e.to === f.node) {
                edges[j].classList.add("active");
            }
        });
        for (let j = f.node + 1; j < nodes.length; j++) {
            nodes[j].classList.add("pending");
        }
        mark(f.line);
        explain.textContent = "forward " + (k + 1) + "/" + D.forward.length + ":  " + n.name +
            " = " + n.op + "  = " + fmt(T.values[f.node]);
    }

    function showBackward(k) {
        const b = D.backward[k];
        const src = D.nodes[b.source];
        const of = D.nodes[b.of].name;
        nodes[b.source].classList.add("current");
        if (b.edge !== null) {
            edges[b.edge].classList.add("active");
        }
        D.edges.forEach((e, j) => {
            if (e.term !== null && e.term > k) {
                edges[j].classList.add("pending-grad");
            }
        });
        mark(b.line);
        const up = T.grads[b.ui];
        const term = T.terms[k];
        const local = T.locals[k];
        const head = "backward " + (k + 1) + "/" + D.backward.length + ":  backprop " +
            src.name + " = " + src.op + "\n";
        const set = b.name + (b.accumulate ? " += " : " = ");
        let text;
        if (b.whole) {  // a matrix gate's whole term (dW = X.T @ dXW)
            text = head + set + b.local + "\n  = " + fmt(term);
        } else if (local === null) {  // a matrix program's elementwise gate
            text = head + "local derivative  d " + src.name + "/d " + of + " = " + b.local +
                "\n" + set + b.upstream + " \u00d7 local = " + fmt(term);
        } else {
            text = head + "local derivative  d " + src.name + "/d " + of + " = " + b.local +
                " = " + fmt(local) + "\n" + set + b.upstream + " \u00d7 local = " + fmt(up) +
                " \u00d7 " + fmt(local) + " = " + fmt(term);
        }
        if (b.accumulate && !D.static) {
            let before = 0;
            D.backward.forEach((o, j) => {
                if (j < k && o.name === b.name) {
                    before = o.accumulate ? before + T.terms[j] : T.terms[j];
                }
            });
            text += "\nfork: " + of + " feeds several gates, so the gradients add: " + b.name +
                " = " + fmt(before) + " + " + fmt(term) + " = " + fmt(before + term);
        } else if (b.accumulate) {
            text += "\nfork: " + of + " feeds several gates, so the gradients add (+=)";
        }
        explain.textContent = text;
    }

    function show() {
        clear();
        if (phase === "forward") {
            showForward(index);
        } else if (phase === "backward") {
            showBackward(index);
        } else {
            explain.textContent = "\u00a0";
        }
    }

    function step(which, count) {
        if (count === 0) {
            return;
        }
        index = phase === which ? Math.min(index + 1, count - 1) : 0;
        phase = which;
        show();
    }

    boxes.forEach((box, k) => {
        if (box === null) {  // a matrix program's page has no inputs
            return;
        }
        box.addEventListener("input", () => {
            if (Number.isFinite(parseFloat(box.value))) {
                sliders[k].value = box.value;
                compute();
            }
        });
        sliders[k].addEventListener("input", () => {
            box.value = sliders[k].value;
            compute();
        });
    });
    document.getElementById("step-forward").addEventListener(
        "click", () => step("forward", D.forward.length));
    document.getElementById("step-backward").addEventListener(
        "click", () => step("backward", D.backward.length));
    document.getElementById("reset").addEventListener("click", () => {
        phase = null;
        index = -1;
        show();
    });
    compute();
})();
