"""torch.optim.lr_scheduler over every argument the crate offers, and the degenerate ones it refuses.

Writes `torch_gen_lr_schedulers.json` into the folder given: a list of cases, each
`{"class", "optimizer", "lr", "args" (every constructor argument, defaults included), "steps",
"lr_per_step" (the rate after construction and after each of `steps` scheduler steps),
"momentum_per_step" (SGD's momentum or Adam's beta1, where the scheduler cycles it),
"metrics" (ReduceLROnPlateau's input per step)}`; a custom `scale_fn` is named by its formula.
OneCycleLR runs the usual loop to its end: `total_steps` scheduler steps, the last of which
PyTorch computes after the last update. Cases with `"refused"` name the argument ndoptim must
refuse when the schedule is built, with `"torch"` saying what PyTorch does with it. Run from the
repository root with PyTorch 2.15.0:

    python3 tests/data/generate/torch_schedulers.py tests/data
"""
import inspect
import json
import math
import os
import sys

import torch
from torch.optim import lr_scheduler as ls

SCALE_FNS = {
    "1 / (1 + 0.1 x)": lambda x: 1 / (1 + 0.1 * x),
    "0.9 ** x": lambda x: 0.9 ** x,
}


def optimizer(name, lr):
    p = torch.nn.Parameter(torch.zeros(1))
    if name == "SGD":
        return torch.optim.SGD([p], lr=lr, momentum=0.9)
    return torch.optim.Adam([p], lr=lr)


def number(v):
    """JSON has no NaN or infinity: they are written as strings."""
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def every_argument(cls, args):
    out = {}
    for name, param in inspect.signature(cls).parameters.items():
        if name in ("optimizer", "verbose"):
            continue
        out[name] = number(args.get(name, None if param.default is inspect.Parameter.empty
                                    else param.default))
    return out


def momentum_of(group, opt_name):
    return group["momentum"] if opt_name == "SGD" else group["betas"][0]


def run(cls_name, args, steps, opt_name="SGD", lr=0.1, metrics=None, scale_fn=None):
    cls = getattr(ls, cls_name)
    opt = optimizer(opt_name, lr)
    kwargs = dict(args)
    if scale_fn is not None:
        kwargs["scale_fn"] = SCALE_FNS[scale_fn]
    s = cls(opt, **kwargs)
    group = opt.param_groups[0]
    lrs, momenta = [group["lr"]], [momentum_of(group, opt_name)]
    for i in range(steps):
        opt.step()
        if metrics is not None:
            s.step(metrics[i])
        else:
            s.step()
        lrs.append(group["lr"])
        momenta.append(momentum_of(group, opt_name))
    recorded = every_argument(cls, args)
    if scale_fn is not None:
        recorded["scale_fn"] = scale_fn
    case = {"class": cls_name, "optimizer": opt_name, "lr": lr, "args": recorded, "steps": steps,
            "lr_per_step": lrs}
    if cls_name in ("OneCycleLR", "CyclicLR") and args.get("cycle_momentum", True):
        case["momentum_per_step"] = momenta
    if metrics is not None:
        case["metrics"] = metrics
    return case


def sequential(children, milestones, steps, lr=0.1):
    """SequentialLR over `children` ((class, args) pairs), each built on the same optimizer."""
    opt = optimizer("SGD", lr)
    built = [getattr(ls, c)(opt, **a) for c, a in children]
    s = ls.SequentialLR(opt, built, milestones=milestones)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(steps):
        opt.step()
        s.step()
        lrs.append(opt.param_groups[0]["lr"])
    args = {"schedulers": [{"class": c, "args": every_argument(getattr(ls, c), a)} for c, a in children],
            "milestones": milestones, "last_epoch": -1}
    return {"class": "SequentialLR", "optimizer": "SGD", "lr": lr, "args": args, "steps": steps,
            "lr_per_step": lrs}


def refused(cls_name, args, argument, steps=40):
    """A degenerate argument: what PyTorch does with it, and the argument ndoptim names."""
    cls = getattr(ls, cls_name)
    opt = optimizer("SGD", 0.1)
    try:
        s = cls(opt, **args)
        bad = None
        for i in range(steps):
            opt.step()
            s.step()
            lr = opt.param_groups[0]["lr"]
            if not (math.isfinite(lr) and lr >= 0):
                bad = f"accepted; rate {lr} after step {i + 1}"
                break
        torch_says = bad or "accepted"
    except (ValueError, ZeroDivisionError) as e:
        torch_says = f"{type(e).__name__}: {e}"
    return {"class": cls_name, "args": every_argument(cls, args), "refused": argument,
            "torch": torch_says}


def cases():
    plateau_metrics = [1.0 / (1 + i) if i < 8 else 0.2 + 0.01 * (i % 3) for i in range(40)]
    rising = [1 - m for m in plateau_metrics]
    yield run("StepLR", dict(step_size=3, gamma=0.7), 40)
    yield run("MultiStepLR", dict(milestones=[20, 4, 20, 30], gamma=0.5), 40)
    yield run("ExponentialLR", dict(gamma=0.9), 40)
    yield run("CosineAnnealingLR", dict(T_max=7, eta_min=0.01), 40)
    yield run("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=1, eta_min=0.005), 40)
    yield run("CosineAnnealingWarmRestarts", dict(T_0=2, T_mult=3, eta_min=0.0), 40)
    yield run("LinearLR", dict(start_factor=1.0, end_factor=0.0, total_iters=7), 40)
    yield run("LinearLR", dict(start_factor=0.25, end_factor=0.75, total_iters=5), 40)
    yield run("ConstantLR", dict(factor=1.0 / 3, total_iters=4), 40)
    yield run("PolynomialLR", dict(total_iters=9, power=0.5), 40)
    yield run("PolynomialLR", dict(total_iters=12, power=3.0), 40)
    for three_phase in (False, True):
        for anneal in ("cos", "linear"):
            for opt_name in ("SGD", "Adam"):
                yield run("OneCycleLR", dict(max_lr=0.5, total_steps=23, pct_start=0.35,
                                             anneal_strategy=anneal, three_phase=three_phase,
                                             div_factor=10.0, final_div_factor=50.0,
                                             base_momentum=0.8, max_momentum=0.92), 23, opt_name)
    yield run("OneCycleLR", dict(max_lr=0.3, total_steps=30, cycle_momentum=False,
                                 anneal_strategy="linear"), 30)
    for mode in ("triangular", "triangular2", "exp_range"):
        for scale_mode in ("cycle", "iterations"):
            yield run("CyclicLR", dict(base_lr=0.01, max_lr=0.2, step_size_up=3, step_size_down=5,
                                       mode=mode, gamma=0.95, scale_mode=scale_mode,
                                       base_momentum=0.7, max_momentum=0.95), 60, "Adam")
    for fn in SCALE_FNS:
        for scale_mode in ("cycle", "iterations"):
            yield run("CyclicLR", dict(base_lr=0.001, max_lr=0.1, step_size_up=4,
                                       scale_mode=scale_mode), 60, scale_fn=fn)
    yield run("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=2, cycle_momentum=False), 30)
    yield run("ReduceLROnPlateau", dict(mode="min", factor=0.5, patience=2, threshold=1e-3,
                                        threshold_mode="rel", cooldown=1, min_lr=0.01, eps=1e-8),
              40, metrics=plateau_metrics)
    yield run("ReduceLROnPlateau", dict(mode="max", factor=0.3, patience=1, threshold=0.05,
                                        threshold_mode="abs", cooldown=0, min_lr=0.0, eps=1e-3),
              40, metrics=rising)
    yield sequential([("LinearLR", dict(start_factor=0.1, total_iters=5)),
                      ("CosineAnnealingLR", dict(T_max=20, eta_min=0.001))], [5], 40)
    yield sequential([("ConstantLR", dict(factor=0.5, total_iters=3)),
                      ("ExponentialLR", dict(gamma=0.9)),
                      ("StepLR", dict(step_size=4, gamma=0.5))], [6, 15], 40)
    # Degenerate arguments: refused when built.
    yield refused("StepLR", dict(step_size=2, gamma=float("nan")), "gamma")
    yield refused("StepLR", dict(step_size=2, gamma=-0.5), "gamma")
    yield refused("MultiStepLR", dict(milestones=[3], gamma=-1.0), "gamma")
    yield refused("ExponentialLR", dict(gamma=-1.0), "gamma")
    yield refused("CosineAnnealingLR", dict(T_max=10, eta_min=float("inf")), "eta_min")
    yield refused("CosineAnnealingLR", dict(T_max=10, eta_min=-0.2), "eta_min")
    yield refused("CosineAnnealingWarmRestarts", dict(T_0=3, eta_min=float("nan")), "eta_min")
    yield refused("ConstantLR", dict(factor=0.0, total_iters=5), "factor")
    yield refused("ConstantLR", dict(factor=1.5, total_iters=5), "factor")
    yield refused("LinearLR", dict(start_factor=0.0), "start_factor")
    yield refused("LinearLR", dict(end_factor=1.5), "end_factor")
    yield refused("PolynomialLR", dict(total_iters=5, power=-1.0), "power")
    yield refused("OneCycleLR", dict(max_lr=0.1, total_steps=20, pct_start=0.0), "pct_start", 20)
    yield refused("OneCycleLR", dict(max_lr=0.1, total_steps=20, pct_start=1.0), "pct_start", 20)
    yield refused("OneCycleLR", dict(max_lr=0.1, total_steps=20, pct_start=0.05), "pct_start", 20)
    yield refused("OneCycleLR", dict(max_lr=0.1, total_steps=20, div_factor=0.0), "div_factor", 20)
    yield refused("OneCycleLR", dict(max_lr=0.1, total_steps=20, final_div_factor=-1.0),
                  "final_div_factor", 20)
    yield refused("CyclicLR", dict(base_lr=0.01, max_lr=0.1, mode="exp_range", gamma=-0.5),
                  "gamma")
    yield refused("ReduceLROnPlateau", dict(factor=1.0), "factor")


def main(out):
    doc = {"reference": f"torch.optim.lr_scheduler (PyTorch {torch.__version__.split('+')[0]});"
                        " generated by tests/data/generate/torch_schedulers.py",
           "cases": list(cases())}
    with open(os.path.join(out, "torch_gen_lr_schedulers.json"), "w") as f:
        json.dump(doc, f, indent=0)
    print(len(doc["cases"]), "cases")


if __name__ == "__main__":
    main(sys.argv[1])
