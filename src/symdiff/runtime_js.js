// Helpers that generated JavaScript (the interactive page's code) carries, as ordinary code.
//
// Each top-level function here is one helper: printers_js.js_helper_source copies its text, with
// the comment lines right above it, into every generated module that calls it, so each must
// stand alone (it uses Math, itself, and the helpers a "// needs:" line above it names, which
// are copied with it). Each computes what the math backend's helper of
// the same name computes (runtime_math.py), with the same overflow-safe forms; where that one
// raises ValueError this one returns NaN. tests/test_emit_js.py runs them under node.
"use strict";

// The logistic function 1/(1 + exp(-t)); below -708 exp(-t) overflows and 1 + exp(t) is 1.
function sigmoid(t) {
    return t >= -708.0 ? 1.0 / (1.0 + Math.exp(-t)) : Math.exp(t);
}

// max(t, 0): the rectified linear unit.
function relu(t) {
    return t > 0 ? t : 0.0;
}

// log(1 + exp(t)), with no overflow for any t.
function softplus(t) {
    return Math.max(t, 0.0) + Math.log1p(Math.exp(-Math.abs(t)));
}

// 1/cosh(t) with no overflow: 2e/(1 + e*e) with e = exp(-|t|) <= 1.
function sech(t) {
    const e = Math.exp(-Math.abs(t));
    return 2.0 * e / (1.0 + e * e);
}

// 1/sinh(t) with no overflow: 2e/(1 - e*e) with e = exp(-|t|), signed as t.
function csch(t) {
    const e = Math.exp(-Math.abs(t));
    const r = 2.0 * e / -Math.expm1(-2.0 * Math.abs(t));
    return (t < 0 || Object.is(t, -0)) ? -r : r;
}

// atan(1/t), and pi/2 at t = 0 (SymPy's acot(0)).
function acot(t) {
    return t ? Math.atan(1.0 / t) : Math.PI / 2;
}

// log(exp(t0) + exp(t1) + ...) with no overflow: the largest term is factored out.
function logsumexp(...terms) {
    const top = Math.max(...terms);
    if (!Number.isFinite(top)) {
        return top;
    }
    let total = 0.0;
    for (const t of terms) {
        total += Math.exp(t - top);
    }
    return top + Math.log(total);
}

// psi(x) = d log(gamma(x))/dx: reflection, recurrence to x >= 10, asymptotic series.
function digamma(x) {
    if (x < 0.5) {
        return digamma(1.0 - x) - Math.PI / Math.tan(Math.PI * x);
    }
    let acc = 0.0;
    while (x < 10.0) {
        acc -= 1.0 / x;
        x += 1.0;
    }
    const f = 1.0 / (x * x);
    const series = f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f * (
        1 / 132 - f * (691 / 32760 - f / 12))))));
    return acc + Math.log(x) - 0.5 / x - series;
}

// t for t > 0, exp(t) - 1 otherwise (alpha = 1), with expm1 near 0.
function elu(t) {
    return t > 0 ? t : Math.expm1(t);
}

// SCALE*t for t > 0, SCALE*ALPHA*(exp(t) - 1) otherwise (Klambauer et al.'s constants).
function selu(t) {
    return 1.0507009873554805 * (t > 0 ? t : 1.6732632423543772 * Math.expm1(t));
}

// t*tanh(softplus(t)), softplus computed with no overflow.
function mish(t) {
    return t * Math.tanh(Math.max(t, 0.0) + Math.log1p(Math.exp(-Math.abs(t))));
}

// x*log(y), and 0 where x = 0 whatever y is; NaN for y <= 0 otherwise.
function xlogy(x, y) {
    return x === 0 ? 0.0 : (y > 0 ? x * Math.log(y) : NaN);
}

// sin(t)/t, and 1 at 0 (SymPy's sinc).
function sinc(t) {
    return t !== 0 ? Math.sin(t) / t : 1.0;
}

// erf(x) (math.erf): below |x| = 2 the series 2/sqrt(pi) exp(-x*x) sum 2^n x^(2n+1)/(2n+1)!!,
// whose terms all have one sign; beyond, 1 - erfc(|x|) with the sign of x, erfc by its
// continued fraction (as in erfc below).
function erf(x) {
    const a = Math.abs(x);
    if (a < 2.0) {
        let term = x, total = x;
        for (let n = 1; Math.abs(term) > 1e-17 * Math.abs(total); n++) {
            term *= 2.0 * x * x / (2 * n + 1);
            total += term;
        }
        return 1.1283791670955126 * Math.exp(-x * x) * total;
    }
    let f = a, c = a, d = 0.0;
    for (let n = 1; n < 5000; n++) {
        d = 1.0 / (a + 0.5 * n * d);
        c = a + 0.5 * n / c;
        f *= c * d;
        if (Math.abs(c * d - 1.0) < 1e-16) {
            break;
        }
    }
    const e = Math.exp(-a * a) / (1.7724538509055159 * f);
    return x < 0 ? e - 1.0 : 1.0 - e;
}

// erfc(x) = 1 - erf(x) (math.erfc): beyond x = 2 its continued fraction (no cancellation),
// exp(-x*x)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))); elsewhere 1 - erf(x).
function erfc(x) {
    if (x < 2.0) {
        if (x <= -2.0) {
            return 2.0 - erfc(-x);
        }
        let term = x, total = x;  // erf's series (as in erf above)
        for (let n = 1; Math.abs(term) > 1e-17 * Math.abs(total); n++) {
            term *= 2.0 * x * x / (2 * n + 1);
            total += term;
        }
        return 1.0 - 1.1283791670955126 * Math.exp(-x * x) * total;
    }
    let f = x, c = x, d = 0.0;
    for (let n = 1; n < 5000; n++) {
        d = 1.0 / (x + 0.5 * n * d);
        c = x + 0.5 * n / c;
        f *= c * d;
        if (Math.abs(c * d - 1.0) < 1e-16) {
            break;
        }
    }
    return Math.exp(-x * x) / (1.7724538509055159 * f);
}

// The exactly rounded sum of an array (math.fsum, which the math backend's long sums call):
// Shewchuk's exact partial sums, then the last partials rounded half to even as one number.
function fsum(terms) {
    const partials = [];
    for (let x of terms) {
        let i = 0;
        for (let y of partials) {
            if (Math.abs(x) < Math.abs(y)) {
                [x, y] = [y, x];
            }
            const hi = x + y;
            const lo = y - (hi - x);
            if (lo !== 0) {
                partials[i++] = lo;
            }
            x = hi;
        }
        partials.length = i;
        partials.push(x);
    }
    let n = partials.length;
    if (n === 0) {
        return 0.0;
    }
    let hi = partials[--n];
    let lo = 0.0;
    while (n > 0) {
        const x = hi;
        const y = partials[--n];
        hi = x + y;
        lo = y - (hi - x);
        if (lo !== 0) {
            break;
        }
    }
    if (n > 0 && ((lo < 0 && partials[n - 1] < 0) || (lo > 0 && partials[n - 1] > 0))) {
        const y = lo * 2;
        const x = hi + y;
        if (y === x - hi) {
            hi = x;
        }
    }
    return hi;
}

// t*Phi(t), the exact (erf) GELU: Phi(t) = erfc(-t/sqrt(2))/2, which keeps its digits for t << 0.
// needs: erfc
function gelu(t) {
    return 0.5 * t * erfc(-0.7071067811865476 * t);
}
