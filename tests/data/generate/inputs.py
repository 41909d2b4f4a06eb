"""Inputs and file format shared by the generators in this folder.

Every generator writes the conformance format of `tests/data/` (see `tests/conformance.rs`):
`initial`, `grads` per step, `expected` after each step, optional `lr_per_step`. The inputs drawn
here stress what the shared files do not: long runs (200 steps), a learning rate changed before
every step, and odd keys (a 0-d scalar, an empty tensor, a 4-D convolution kernel) beside a matrix.
Gradients mix normal values with exact zeros, tiny (1e-4) and huge (1e3) scales, as the shared
files do. Everything is seeded: running a generator twice writes the same bytes.
"""
import json
import math
import os

import numpy as np

# Odd keys beside an ordinary matrix: 0-d, empty, 4-D (out, in, kh, kw).
ODD_SHAPES = {"W": (3, 4), "scalar": (), "empty": (0, 3), "conv": (2, 1, 2, 3)}

DTYPES = {"f64": np.float64, "f32": np.float32}


def draw(seed, shapes=ODD_SHAPES, steps=200, dtype=np.float64, big=1e3):
    """Initial parameters and per-step gradients, in `dtype`; `big` is the scale of the 10%
    of huge entries."""
    rng = np.random.default_rng(seed)
    initial = {k: rng.normal(0.0, 0.5, size=s).astype(dtype) for k, s in shapes.items()}
    grads = []
    for _ in range(steps):
        step = {}
        for k, s in shapes.items():
            g = rng.normal(size=s)
            scale = rng.choice([1.0, 1e-4, big, 0.0], size=s, p=[0.7, 0.1, 0.1, 0.1])
            step[k] = (g * scale).astype(dtype)
        grads.append(step)
    return initial, grads


def lr_per_step(base, steps=200):
    """A rate changed before every step: a warm-up, then a cosine with a ripple, never zero."""
    out = []
    for i in range(steps):
        warm = min(1.0, (i + 1) / 10)
        cos = 0.5 * (1 + math.cos(math.pi * i / steps))
        out.append(base * warm * (0.1 + 0.9 * cos) * (1 + 0.05 * math.sin(i)))
    return out


def written(tree):
    """`{key: array}` in the file's form; f32 values as the f64 numbers they are (exact)."""
    return {
        k: {"shape": list(np.shape(v)), "data": [float(x) for x in np.asarray(v).ravel()]}
        for k, v in tree.items()
    }


def spelled(options):
    """Options as the shared files spell them in names: `lr0p01_nesterovTrue`."""
    def one(v):
        if isinstance(v, (tuple, list)):
            return "-".join(one(x) for x in v)
        return str(v).replace(".", "p").replace("-", "m")
    return "_".join(f"{k}{one(v)}" for k, v in options.items()) or "default"


def torch_step(opt, params, lr, grads):
    """One step of a torch optimizer at rate `lr` on `grads`; the parameters after it, written."""
    opt.param_groups[0]["lr"] = lr
    for k, p in params.items():
        p.grad = p.detach().new_tensor(grads[k])
    opt.step()
    return written({k: p.detach().numpy() for k, p in params.items()})


def fields(dname, hyper, lrs, initial, grads, expected, **extra):
    """The fields of a file after its optimizer and reference, in the files' order."""
    return {"dtype": dname, "hyperparameters": hyper, "lr_per_step": lrs,
            "initial": written(initial), "grads": [written(g) for g in grads],
            "expected": expected, **extra}


def write(out, name, doc):
    with open(os.path.join(out, name), "w") as f:
        json.dump(doc, f)
    print(name)
