"""Convolution forward + backward: symdiff's generated layer vs hand-written im2col and PyTorch.

    python benchmarks/conv.py            # N=32, C=8, 28x28, F=16, 3x3, stride 1, padding 1
    python benchmarks/conv.py --quick    # a smaller size, a few rounds (a smoke run)

Three implementations of out = conv2d(X, Wt) + b and its gradients (dX, dWt, db) for a random
upstream gradient, all in float64 on the CPU:

- symdiff: ``layers.conv2d(padding=1)``'s generated ``conv2d_forward``/``conv2d_backward``
  (windows by sliding_window_view + tensordot; dX by KH*KW strided slice additions);
- im2col: the textbook hand-written NumPy layer (cs231n's ``conv_forward_im2col``): the
  columns gathered by fancy indexing, one matrix product each way, col2im by ``np.add.at``;
- torch: ``torch.nn.functional.conv2d`` and autograd (when installed), threads as configured.

Every implementation's output and gradients are compared with symdiff's first (max relative
difference printed). A time is the fastest of ``repeat`` batches, rounds interleaved over the
implementations; ratios are to symdiff, measured in the same run.
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np

from symdiff import layers


def im2col_indices(shape, kh, kw, padding, stride):
    """Index arrays (k, i, j) that gather the (C*KH*KW, OH*OW) columns of one padded image."""
    _, c, h, w = shape
    oh, ow = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    i0 = np.tile(np.repeat(np.arange(kh), kw), c)
    i1 = stride * np.repeat(np.arange(oh), ow)
    j0 = np.tile(np.arange(kw), kh * c)
    j1 = stride * np.tile(np.arange(ow), oh)
    i = i0.reshape(-1, 1) + i1.reshape(1, -1)
    j = j0.reshape(-1, 1) + j1.reshape(1, -1)
    k = np.repeat(np.arange(c), kh * kw).reshape(-1, 1)
    return k, i, j, oh, ow


def im2col_forward(x, w, b, stride=1, padding=1):
    """The textbook im2col convolution: (out, cache)."""
    n = x.shape[0]
    f, _, kh, kw = w.shape
    k, i, j, oh, ow = im2col_indices(x.shape, kh, kw, padding, stride)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = xp[:, k, i, j].transpose(1, 2, 0).reshape(kh * kw * x.shape[1], -1)
    out = (w.reshape(f, -1) @ cols + b.reshape(-1, 1)).reshape(f, oh, ow, n)
    return out.transpose(3, 0, 1, 2), (x, w, cols, (k, i, j), stride, padding)


def im2col_backward(dout, cache):
    """dX by col2im (np.add.at of the columns' gradient), dW and db by matrix products."""
    x, w, cols, (k, i, j), _, padding = cache
    n, c, h, wd = x.shape
    f = w.shape[0]
    d = dout.transpose(1, 2, 3, 0).reshape(f, -1)
    db = d.sum(axis=1)
    dw = (d @ cols.T).reshape(w.shape)
    dcols = (w.reshape(f, -1).T @ d).reshape(c * w.shape[2] * w.shape[3], -1, n)
    dxp = np.zeros((n, c, h + 2 * padding, wd + 2 * padding))
    np.add.at(dxp, (slice(None), k, i, j), dcols.transpose(2, 0, 1))
    return dxp[:, :, padding:padding + h, padding:padding + wd], dw, db


def implementations(values, dout, frameworks: bool = True):
    """name -> a function of no arguments returning (out, (dX, dWt, db)) as NumPy arrays
    (PyTorch's when ``frameworks`` and it is installed)."""
    gen = layers.program("conv2d", padding=1).compile("numpy")

    def generated():
        out, cache = gen.forward(*values)
        return out, gen.backward(dout, cache)

    def im2col():
        out, cache = im2col_forward(*values)
        return out, im2col_backward(dout, cache)

    found = {"symdiff (generated)": generated, "im2col (hand NumPy)": im2col}
    if not frameworks:
        return found
    try:
        import torch
        import torch.nn.functional as functional
    except ImportError:
        return found
    t_values = [torch.tensor(v) for v in values]
    t_dout = torch.tensor(dout)

    def with_torch():
        x, w, b = (v.clone().requires_grad_(True) for v in t_values)
        out = functional.conv2d(x, w, b, padding=1)
        out.backward(t_dout)
        return out.detach().numpy(), (x.grad.numpy(), w.grad.numpy(), b.grad.numpy())

    found[f"torch {torch.__version__} CPU ({torch.get_num_threads()} threads)"] = with_torch
    return found


SIZES = {"quick": (4, 3, 12, 5), "full": (32, 8, 28, 16)}  # N, C, side, F


def problem(n: int, c: int, side: int, f: int):
    """Seeded random (X, Wt, b) and upstream gradient of a 3x3, padding-1 convolution."""
    rng = np.random.default_rng(0)
    values = [rng.normal(size=(n, c, side, side)), rng.normal(size=(f, c, 3, 3)),
              rng.normal(size=f)]
    return values, rng.normal(size=(n, f, side, side))


def bench_conv(cfg, measure) -> dict:
    """Section 9 of benchmarks/run.py: each implementation timed by run.py's ``measure`` (its
    fastest batch over cfg.rounds), checked against symdiff's out, dX, dWt, db; torch only when
    cfg.frameworks (not in --smoke)."""
    n, c, side, f = SIZES["quick" if cfg.mode == "smoke" else "full"]
    values, dout = problem(n, c, side, f)
    impls = implementations(values, dout, frameworks=cfg.frameworks)
    first = next(iter(impls.values()))
    out, grads = first()
    rows = measure([(name, fn, (), lambda r: [r[0], *r[1]]) for name, fn in impls.items()],
                   cfg, [out, *grads])
    if "torch" not in " ".join(impls):
        rows.append({"implementation": "torch", "status": "not installed" if cfg.frameworks
                     else f"skipped (--{cfg.mode})"})
    return {"shape": {"N": n, "C": c, "H": side, "W": side, "F": f, "K": 3}, "rows": rows}


def conv_title(section: dict) -> str:
    s = section["shape"]
    return (f"### 9. Convolution forward + backward (benchmarks/conv.py): N={s['N']}, C={s['C']}, "
            f"{s['H']}x{s['W']}, F={s['F']}, {s['K']}x{s['K']}, stride 1, padding 1, float64")


def conv_table(section: dict) -> str:
    lines = ["| implementation | ms/call | vs symdiff | agrees |", "|---|---|---|---|"]
    for r in section["rows"]:
        if "seconds" not in r:
            lines.append(f"| {r['implementation']} | - | - | {r['status']} |")
        else:
            lines.append(f"| {r['implementation']} | {r['seconds'] * 1e3:,.3g} | "
                         f"{r['vs_reference']:.2f}x | {'yes' if r['agrees'] else 'NO'} |")
    return "\n".join(lines)


def conv_targets(section: dict, target) -> list[dict]:
    """symdiff's conv layer no slower than hand im2col; the torch ratio for information."""
    rows = {r["implementation"]: r for r in section["rows"] if "seconds" in r}
    mine = rows["symdiff (generated)"]["seconds"]
    ratio = mine / rows["im2col (hand NumPy)"]["seconds"]
    out = [target("conv2d forward + backward <= hand im2col time", ratio, 1.0,
                  f"{ratio:.2f}x of im2col's time")]
    torch = [r for name, r in rows.items() if name.startswith("torch")]
    if torch:
        out.append({"target": "conv2d time / torch time (no target)", "met": "info",
                    "value": mine / torch[0]["seconds"],
                    "shown": f"{mine / torch[0]['seconds']:.2f}x"})
    return out


def main(quick: bool = False) -> None:
    n, c, side, f = SIZES["quick" if quick else "full"]
    rounds, number = (2, 2) if quick else (5, 5)
    values, dout = problem(n, c, side, f)
    impls = implementations(values, dout)
    first = None
    for name, fn in impls.items():
        out, grads = fn()
        arrays = [out, *grads]
        if first is None:
            first = arrays
        worst = max(float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in zip(arrays, first))
        print(f"{name}: max relative difference from symdiff = {worst:.1e}")
    best = dict.fromkeys(impls, float("inf"))
    for _ in range(rounds):
        for name, fn in impls.items():
            best[name] = min(best[name], min(timeit.repeat(fn, number=number, repeat=3)) / number)
    print(f"\nconv2d forward + backward, N={n}, C={c}, {side}x{side}, F={f}, 3x3, stride 1, "
          "padding 1, float64")
    print("| implementation | ms per call | time / symdiff |\n|---|---|---|")
    mine = best["symdiff (generated)"]
    for name, seconds in best.items():
        print(f"| {name} | {seconds * 1e3:.2f} | {seconds / mine:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    main(parser.parse_args().quick)
