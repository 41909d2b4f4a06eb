"""schedulefree's AdamWScheduleFree, SGDScheduleFree, RAdamScheduleFree and ScheduleFreeWrapper over
every argument.

Writes `sf_gen_<class>_<options>_<dtype>.json` into the folder given: 200 steps, the learning rate
set before every step (`lr_per_step`), keys of shape (3, 4), (), (0, 3) and (2, 1, 2, 3);
`expected` holds the training parameters y after each step and `expected_eval` the evaluation
parameters x that `optimizer.eval()` puts in them, computed on a copy (as the shared `sf_*`
files). `train()` is called before the first step; `foreach=False`. `sf_gen_wrapper_<base>_*`
wrap torch.optim.SGD, torch.optim.Adam and prodigyopt's Prodigy (whose `d` scales the averaging
weights), on the (3, 4) and (2, 1, 2, 3) keys only: the wrapper's byte-view swap fails on 0-d and
empty tensors. Run from the repository root with schedulefree 1.4.1, PyTorch 2.15.0 and
prodigyopt 1.1.2:

    python3 tests/data/generate/schedule_free_options.py tests/data
"""
import copy
import inspect
import sys

import prodigyopt
import schedulefree
import torch

from inputs import DTYPES, ODD_SHAPES, draw, lr_per_step, spelled, torch_step, write, written

TORCH = {"f64": torch.float64, "f32": torch.float32}

CASES = [
    ("AdamWScheduleFree", dict(lr=0.0025, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01,
                               warmup_steps=20, r=0.5, weight_lr_power=1.0)),
    ("AdamWScheduleFree", dict(lr=0.0025, weight_decay=0.05)),
    ("SGDScheduleFree", dict(lr=0.05, momentum=0.8, weight_decay=0.01, warmup_steps=10, r=1.0,
                             weight_lr_power=3.0)),
    ("SGDScheduleFree", dict(lr=0.05)),
    # β₂ 0.9 starts the rectification at step 6 of 200; the second case steps in its SGD phase.
    ("RAdamScheduleFree", dict(lr=0.0025, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.01, r=0.5,
                               weight_lr_power=1.0)),
    ("RAdamScheduleFree", dict(lr=0.0025, betas=(0.9, 0.99), silent_sgd_phase=False)),
]


def trajectory(opt, params, lrs, grads):
    """`y` after each step in training mode, and `x`, what `eval()` puts in a copy."""
    opt.train()
    expected, evals = [], []
    for lr, g in zip(lrs, grads):
        expected.append(torch_step(opt, params, lr, g))
        twin_params, twin = copy.deepcopy((params, opt))
        twin.eval()
        evals.append(written({k: p.detach().numpy() for k, p in twin_params.items()}))
    return expected, evals


def fields(dname, hyper, lrs, initial, grads, expected, evals):
    """The fields every file shares after its optimizer and reference."""
    return {"dtype": dname, "hyperparameters": hyper, "lr_per_step": lrs,
            "initial": written(initial), "grads": [written(g) for g in grads],
            "expected": expected, "expected_eval": evals}


# (base class, its arguments, the wrapper's arguments)
WRAPPER_CASES = [
    (torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
     dict(momentum=0.8, weight_decay_at_y=0.01, r=0.5, weight_lr_power=1.0)),
    (torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.01, amsgrad=True),
     dict(weight_decay_at_y=0.1)),
    (prodigyopt.Prodigy, dict(lr=1.0, d0=1e-3), dict(momentum=0.95, weight_decay_at_y=0.01)),
]


def wrapper_case(out, seed, base_cls, base_options, options):
    shapes = {k: ODD_SHAPES[k] for k in ("W", "conv")}
    for dname, dtype in DTYPES.items():
        initial, grads = draw(5100 + seed, shapes, dtype=dtype)
        lrs = [float(dtype(x)) for x in lr_per_step(base_options["lr"])]
        params = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in initial.items()}
        extra = {} if base_cls is prodigyopt.Prodigy else dict(foreach=False)
        base = base_cls(list(params.values()), **base_options, **extra)
        if base_cls is torch.optim.Adam:
            # The wrapper's `z` makes Adam skip its lazy initialisation: made here as Adam would.
            for p in params.values():
                base.state[p].update(
                    step=torch.tensor(0.0, dtype=torch.float32),
                    exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p),
                    max_exp_avg_sq=torch.zeros_like(p))
        opt = schedulefree.ScheduleFreeWrapper(base, **options)
        expected, evals = trajectory(opt, params, lrs, grads)
        hyper = {k: plain(options.get(k, p.default)) for k, p in
                 inspect.signature(schedulefree.ScheduleFreeWrapper).parameters.items() if k != "base"}
        base_hyper = {k: plain({**base_options, **extra}.get(k, p.default)) for k, p in
                      inspect.signature(base_cls).parameters.items() if k != "params"}
        base_hyper = {k: ("inf" if v == float("inf") else v) for k, v in base_hyper.items()}
        write(out, f"sf_gen_wrapper_{base_cls.__name__.lower()}_{spelled(options)}_{dname}.json", {
            "optimizer": "ScheduleFreeWrapper",
            "reference": f"schedulefree.ScheduleFreeWrapper({base_cls.__module__.split('.')[0]}"
                         f".{base_cls.__name__}(...)) (schedulefree 1.4.1, PyTorch"
                         f" {torch.__version__.split('+')[0]}, CPU; train() before the first step);"
                         " generated by tests/data/generate/schedule_free_options.py",
            **fields(dname, hyper, lrs, initial, grads, expected, evals),
            "base_optimizer": {"name": base_cls.__name__, "hyperparameters": base_hyper},
        })


def plain(v):
    return list(v) if isinstance(v, tuple) else v


def main(out):
    for seed, (cls_name, options) in enumerate(CASES):
        cls = getattr(schedulefree, cls_name)
        for dname, dtype in DTYPES.items():
            initial, grads = draw(5000 + seed, ODD_SHAPES, dtype=dtype)
            lrs = [float(dtype(x)) for x in lr_per_step(options["lr"])]
            params = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in initial.items()}
            opt = cls(list(params.values()), foreach=False, **options)
            expected, evals = trajectory(opt, params, lrs, grads)
            hyper = {k: plain(options.get(k, p.default))
                     for k, p in inspect.signature(cls).parameters.items() if k not in ("params", "foreach")}
            shown = {k: v for k, v in options.items() if k != "lr"}
            write(out, f"sf_gen_{cls_name.lower()}_{spelled(shown)}_{dname}.json", {
                "optimizer": cls_name,
                "reference": f"schedulefree.{cls_name} (schedulefree 1.4.1, PyTorch"
                             f" {torch.__version__.split('+')[0]}, CPU, foreach=False; train() before"
                             " the first step); generated by tests/data/generate/schedule_free_options.py",
                **fields(dname, hyper, lrs, initial, grads, expected, evals),
            })
    for seed, (base_cls, base_options, options) in enumerate(WRAPPER_CASES):
        wrapper_case(out, seed, base_cls, base_options, options)


if __name__ == "__main__":
    main(sys.argv[1])
