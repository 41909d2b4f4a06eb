"""torch-optimi's optimizers over every argument, on bfloat16, float32 and float64 parameters.

Writes `optimi_gen_<class>_<options>_<dtype>.json` into the folder given: 200 steps, the learning
rate set before every step (`lr_per_step`), keys of shape (3, 4), () (0-d), (0, 3) (empty) and
(2, 1, 2, 3) (4-D); `hyperparameters` holds every argument, defaults included (`max_lr` as
optimi resolves it). bf16 files also hold `expected_state` (every state tensor after every step,
`kahan_comp` null where optimi keeps none), as the shared `optimi_*_bf16` files do; on bfloat16
every array is a bfloat16 value written exactly. optimi runs its per-tensor loop
(`foreach=False, triton=False`). Run from the repository root with torch-optimi 0.3.3 and
PyTorch 2.15.0:

    python3 tests/data/generate/optimi_options.py tests/data
"""
import inspect
import sys

import numpy as np
import optimi
import torch

from inputs import ODD_SHAPES, draw, lr_per_step, spelled, write, written

TORCH = {"bf16": torch.bfloat16, "f32": torch.float32, "f64": torch.float64}

# (class, options, element types): every argument in at least one case.
CASES = [
    ("SGD", dict(lr=0.01), ("bf16", "f32")),
    ("SGD", dict(lr=0.01, momentum=0.9, weight_decay=0.01), ("bf16", "f32", "f64")),
    ("SGD", dict(lr=0.01, momentum=0.9, dampening=True, weight_decay=0.01, decouple_wd=True),
     ("bf16", "f32", "f64")),
    ("SGD", dict(lr=0.01, momentum=0.8, dampening=True, torch_init=True, weight_decay=0.01),
     ("bf16", "f32", "f64")),
    ("SGD", dict(lr=0.01, momentum=0.9, weight_decay=1e-3, decouple_lr=True, max_lr=0.02),
     ("bf16", "f32", "f64")),
    ("SGD", dict(lr=0.01, momentum=0.9, kahan_sum=False), ("bf16",)),
    ("Adam", dict(lr=0.003, betas=(0.8, 0.95), eps=1e-5, weight_decay=0.01), ("bf16", "f32", "f64")),
    ("Adam", dict(lr=0.003, weight_decay=0.01, decouple_wd=True), ("bf16", "f32", "f64")),
    ("Adam", dict(lr=0.003, weight_decay=1e-3, decouple_lr=True), ("bf16", "f32", "f64")),
    ("AdamW", dict(lr=0.003), ("bf16", "f32", "f64")),
    ("AdamW", dict(lr=0.003, kahan_sum=False), ("bf16",)),
    ("AdamW", dict(lr=0.003, betas=(0.85, 0.98), eps=1e-7, weight_decay=1e-3, decouple_lr=True,
                   max_lr=0.01), ("bf16", "f32", "f64")),
    ("Lion", dict(lr=3e-4, weight_decay=0.1), ("bf16", "f32", "f64")),
    ("Lion", dict(lr=3e-4, betas=(0.95, 0.98), weight_decay=1e-3, decouple_lr=True),
     ("bf16", "f32", "f64")),
    ("RAdam", dict(lr=0.003, betas=(0.8, 0.95), eps=1e-5, weight_decay=0.01), ("bf16", "f32", "f64")),
    ("RAdam", dict(lr=0.003, weight_decay=0.01, decouple_wd=True), ("bf16", "f32", "f64")),
    ("RAdam", dict(lr=0.003, weight_decay=1e-3, decouple_lr=True), ("bf16", "f32")),
    ("Ranger", dict(lr=0.003), ("bf16", "f32", "f64")),
    ("Ranger", dict(lr=0.003, k=4, alpha=0.3, weight_decay=0.01, decouple_wd=False),
     ("bf16", "f32", "f64")),
    ("Ranger", dict(lr=0.003, weight_decay=1e-3, decouple_lr=True), ("bf16", "f32")),
    ("StableAdamW", dict(lr=0.003), ("bf16", "f32", "f64")),
    ("StableAdamW", dict(lr=0.003, betas=(0.8, 0.95), eps=1e-7, weight_decay=1e-3,
                         decouple_lr=True, max_lr=0.01), ("bf16", "f32", "f64")),
    # Later cases (each case's draws follow its place in this list, so new ones go last).
    ("Ranger", dict(lr=0.003, kahan_sum=False), ("bf16",)),
    ("Ranger", dict(lr=0.003, k=3, alpha=0.8, kahan_sum=False), ("bf16",)),
    ("StableAdamW", dict(lr=0.003, kahan_sum=False), ("bf16",)),
    ("Adan", dict(lr=0.003), ("bf16", "f32", "f64")),
    ("Adan", dict(lr=0.003, kahan_sum=True), ("bf16",)),
    ("Adan", dict(lr=0.003, betas=(0.9, 0.85, 0.95), eps=1e-7, weight_decay=0.05, decouple_lr=True,
                  max_lr=0.01), ("bf16", "f32", "f64")),
    ("Adan", dict(lr=0.003, weight_decay=0.05, kahan_sum=True, decouple_lr=True), ("bf16",)),
    ("Adan", dict(lr=0.003, weight_decay=0), ("bf16", "f32", "f64")),
    # optimi's Adan class never passes adam_wd to its step (0.3.3): these cases reach the flag
    # through the functional `adan` the class calls (see `adam_wd_through_functional`).
    ("Adan", dict(lr=0.003, weight_decay=0.05, adam_wd=True), ("bf16", "f32", "f64")),
]

# State tensors optimi keeps that are constants, not state: StableAdamW's ε² as a tensor.
CONSTANTS = ("step", "eps_sq")


def adam_wd_through_functional(options):
    """Runs optimi.Adan's step with the `adam_wd` of `options`, which the class drops."""
    import functools
    module = sys.modules["optimi.adan"]  # the package's `adan` attribute is the function
    original = module.adan
    if options.get("adam_wd"):
        module.adan = functools.partial(original, adam_wd=True)
    return lambda: setattr(module, "adan", original)


def plain(v):
    return list(v) if isinstance(v, tuple) else v


def every_argument(cls, options, resolved):
    out = {}
    for name, p in inspect.signature(cls).parameters.items():
        if name in ("params", "foreach", "triton", "gradient_release"):
            continue
        out[name] = plain(options.get(name, None if p.default is inspect.Parameter.empty else p.default))
    out["max_lr"] = resolved["max_lr"]
    out["kahan_sum"] = resolved["kahan_sum"]
    return out


def as_numpy(t):
    return t.detach().to(torch.float64).numpy()


def main(out):
    for seed, (cls_name, options, dtypes) in enumerate(CASES):
        cls = getattr(optimi, cls_name)
        for dname in dtypes:
            # Inputs drawn in f64 and rounded to the element type (bf16 through torch).
            initial, grads = draw(3000 + seed, ODD_SHAPES, dtype=np.float64)
            tdtype = TORCH[dname]
            lrs = [float(torch.tensor(x, dtype=torch.float32)) for x in lr_per_step(options["lr"])]
            params = {k: torch.nn.Parameter(torch.tensor(v).to(tdtype)) for k, v in initial.items()}
            opt = cls(list(params.values()), foreach=False, triton=False, **options)
            restore = adam_wd_through_functional(options)
            expected, states = [], []
            for lr, g in zip(lrs, grads):
                opt.param_groups[0]["lr"] = lr
                for k, p in params.items():
                    p.grad = torch.tensor(g[k]).to(tdtype)
                opt.step()
                expected.append(written({k: as_numpy(p) for k, p in params.items()}))
                if dname == "bf16":
                    states.append({
                        k: {name: (None if v is None else written({"x": as_numpy(v)})["x"])
                            for name, v in opt.state[p].items()
                            if name not in CONSTANTS and (v is None or torch.is_tensor(v))}
                        for k, p in params.items()})
            restore()
            group = opt.param_groups[0]
            shown = {k: v for k, v in options.items() if k != "lr"}
            through = " (adam_wd through the functional optimi.adan.adan)" if options.get("adam_wd") else ""
            doc = {
                "optimizer": cls_name,
                "reference": f"optimi.{cls_name}{through} (torch-optimi {optimi.__version__ if hasattr(optimi, '__version__') else '0.3.3'},"
                             f" PyTorch {torch.__version__.split('+')[0]}, CPU, foreach=False, triton=False);"
                             " generated by tests/data/generate/optimi_options.py",
                "dtype": dname,
                "hyperparameters": every_argument(cls, options, group),
                "lr_per_step": lrs,
                "initial": written({k: as_numpy(p.new_tensor(initial[k]).to(tdtype)) for k, p in params.items()}),
                "grads": [written({k: as_numpy(torch.tensor(v).to(tdtype)) for k, v in g.items()}) for g in grads],
                "expected": expected,
            }
            if dname == "bf16":
                doc["expected_state"] = states
            write(out, f"optimi_gen_{cls_name.lower()}_{spelled(shown)}_{dname}.json", doc)


if __name__ == "__main__":
    main(sys.argv[1])
