"""torch.optim's first-order optimizers over every argument, long runs, per-step rates, odd keys.

Writes `torch_gen_<class>_<options>_<dtype>.json` into the folder given, in the shared files'
format: 200 steps, the learning rate set in the parameter group before every step
(`lr_per_step`), keys of shape (3, 4), () (0-d), (0, 3) (empty) and (2, 1, 2, 3) (4-D).
`hyperparameters` holds every constructor argument, defaults included; the optimizers run
per tensor (`foreach=False`), as the shared files do. Run from the repository root with
PyTorch 2.15.0:

    python3 tests/data/generate/torch_optim.py tests/data
"""
import contextlib
import inspect
import sys

import numpy as np
import torch

from inputs import DTYPES, ODD_SHAPES, draw, lr_per_step, spelled, write, written

TORCH_DTYPES = {"f64": torch.float64, "f32": torch.float32}

# (class, options): every argument that changes the arithmetic, in at least one case.
CASES = [
    ("SGD", dict(lr=0.01)),
    ("SGD", dict(lr=0.01, momentum=0.9, dampening=0.3, weight_decay=0.01, maximize=True)),
    ("SGD", dict(lr=0.01, momentum=0.8, nesterov=True, weight_decay=1e-3)),
    ("Adam", dict(lr=0.001, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01, amsgrad=True,
                  maximize=True)),
    ("Adam", dict(lr=0.001, weight_decay=0.05, decoupled_weight_decay=True, amsgrad=True)),
    ("AdamW", dict(lr=0.003, betas=(0.85, 0.98), eps=1e-7, weight_decay=0.1, maximize=True)),
    ("AdamW", dict(lr=0.003, amsgrad=True)),
    ("Adagrad", dict(lr=0.05, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.5,
                     eps=1e-6, maximize=True)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.01, momentum=0.5, centered=True,
                     maximize=True)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("NAdam", dict(lr=0.002, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01, momentum_decay=0.01,
                   maximize=True)),
    ("NAdam", dict(lr=0.002, weight_decay=0.05, decoupled_weight_decay=True)),
    ("RAdam", dict(lr=0.001, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01, maximize=True)),
    ("RAdam", dict(lr=0.001, weight_decay=0.05, decoupled_weight_decay=True)),
    ("Adamax", dict(lr=0.002, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.01, maximize=True)),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.01, maximize=True)),
    ("Rprop", dict(lr=0.02, etas=(0.3, 1.5), step_sizes=(1e-4, 1.0), maximize=True)),
    ("ASGD", dict(lr=0.01, lambd=1e-3, alpha=0.5, t0=50, weight_decay=0.01, maximize=True)),
    ("Adafactor", dict(lr=0.01, beta2_decay=-0.5, eps=(1e-30, 1e-2), d=2.0, weight_decay=0.01,
                       maximize=True)),
    ("Adafactor", dict(lr=0.01)),
    ("Muon", dict(lr=0.02, weight_decay=0.05, momentum=0.9, nesterov=False, eps=1e-6, ns_steps=4,
                  adjust_lr_fn="match_rms_adamw")),
    ("Muon", dict(lr=0.02, ns_coefficients=(3.0, -3.2, 1.2))),
]

# torch's Muon takes matrices only.
MUON_SHAPES = {"W1": (6, 4), "W2": (3, 5), "W3": (8, 8), "empty": (0, 3)}

# SGD with swa_utils: an average after every step and SWALR driving the rate.
AVERAGED = [
    (dict(lr=0.05, momentum=0.9), {"kind": "ema", "decay": 0.99},
     dict(swa_lr=0.01, anneal_epochs=30, anneal_strategy="linear")),
    (dict(lr=0.05, momentum=0.9, nesterov=True), {"kind": "swa"},
     dict(swa_lr=0.02, anneal_epochs=0, anneal_strategy="cos")),
]


def plain(v):
    return list(v) if isinstance(v, tuple) else v


def every_argument(cls, options):
    out = {}
    for name, p in inspect.signature(cls).parameters.items():
        if name == "params":
            continue
        out[name] = plain(options.get(name, p.default))
    out["foreach"] = False
    return out


def main(out):
    for seed, (cls_name, options) in enumerate(CASES):
        cls = getattr(torch.optim, cls_name)
        for dname, dtype in DTYPES.items():
            # torch's Adafactor divides by the element count: an empty tensor fails there.
            shapes = {k: v for k, v in ODD_SHAPES.items()
                      if not (cls_name == "Adafactor" and 0 in v)}
            if cls_name == "Muon":
                shapes = MUON_SHAPES
            initial, grads = draw(1000 + seed, shapes, dtype=dtype)
            lrs = [float(dtype(x)) for x in lr_per_step(options["lr"])]
            params = {k: torch.nn.Parameter(torch.tensor(v, dtype=TORCH_DTYPES[dname]))
                      for k, v in initial.items()}
            kwargs = dict(options)
            if "foreach" in inspect.signature(cls).parameters:
                kwargs["foreach"] = False
            opt = cls(list(params.values()), **kwargs)
            expected = []
            with newton_schulz_in_own_dtype():
                for lr, g in zip(lrs, grads):
                    opt.param_groups[0]["lr"] = lr
                    for k, p in params.items():
                        p.grad = torch.tensor(g[k], dtype=TORCH_DTYPES[dname])
                    opt.step()
                    expected.append(written({k: p.detach().numpy() for k, p in params.items()}))
            shown = {k: v for k, v in options.items() if k != "lr"}
            prefix = "torchfp" if cls_name == "Muon" else "torch"
            write(out, f"{prefix}_gen_{cls_name.lower()}_{spelled(shown)}_{dname}.json", {
                "optimizer": cls_name,
                "reference": f"torch.optim.{cls_name} (PyTorch {torch.__version__.split('+')[0]},"
                             " CPU, foreach=False); generated by tests/data/generate/torch_optim.py",
                "dtype": dname,
                "hyperparameters": every_argument(cls, options),
                "lr_per_step": lrs,
                "initial": written(initial),
                "grads": [written(g) for g in grads],
                "expected": expected,
            })


    averaged(out)


@contextlib.contextmanager
def newton_schulz_in_own_dtype():
    """torch's Muon with the bfloat16 copy its Newton-Schulz makes replaced by a copy in the
    parameter's own dtype (the shared `torchfp_muon_*` files' convention)."""
    original = torch.Tensor.to

    def to(self, *args, **kwargs):
        if kwargs.get("dtype") is torch.bfloat16 and kwargs.get("copy"):
            return self.clone()
        return original(self, *args, **kwargs)
    torch.Tensor.to = to
    try:
        yield
    finally:
        torch.Tensor.to = original


def averaged(out):
    from torch.optim import swa_utils
    for seed, (options, averaging, swalr) in enumerate(AVERAGED):
        for dname, dtype in DTYPES.items():
            initial, grads = draw(2000 + seed, dtype=dtype)
            params = {k: torch.nn.Parameter(torch.tensor(v, dtype=TORCH_DTYPES[dname]))
                      for k, v in initial.items()}
            opt = torch.optim.SGD(list(params.values()), foreach=False, **options)
            model = torch.nn.ParameterDict(params)
            if averaging["kind"] == "ema":
                avg = swa_utils.AveragedModel(
                    model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(averaging["decay"]))
            else:
                avg = swa_utils.AveragedModel(model)
            sched = swa_utils.SWALR(opt, **swalr)
            expected, averages, lrs = [], [], []
            for g in grads:
                lrs.append(opt.param_groups[0]["lr"])
                for k, p in params.items():
                    p.grad = torch.tensor(g[k], dtype=TORCH_DTYPES[dname])
                opt.step()
                expected.append(written({k: p.detach().numpy() for k, p in params.items()}))
                avg.update_parameters(model)
                averages.append(written({k: p.detach().numpy() for k, p in avg.module.items()}))
                sched.step()
            described = dict(averaging, **{"class": "torch.optim.swa_utils.AveragedModel",
                                           "avg_fn": None, "use_buffers": False,
                                           "multi_avg_fn": None if averaging["kind"] == "swa"
                                           else f"get_ema_multi_avg_fn({averaging['decay']})"})
            name = spelled(dict(averaging, anneal=swalr["anneal_strategy"]))
            write(out, f"torch_gen_swa_{name}_{dname}.json", {
                "optimizer": "SGD",
                "reference": f"torch.optim.SGD + torch.optim.swa_utils (PyTorch"
                             f" {torch.__version__.split('+')[0]}, CPU, foreach=False); generated by"
                             " tests/data/generate/torch_optim.py",
                "dtype": dname,
                "hyperparameters": every_argument(torch.optim.SGD, options),
                "lr_per_step": lrs,
                "averaging": described,
                "scheduler": {"class": "torch.optim.swa_utils.SWALR",
                              "args": dict(swalr, last_epoch=-1)},
                "initial": written(initial),
                "grads": [written(g) for g in grads],
                "expected": expected,
                "expected_average": averages,
            })


if __name__ == "__main__":
    main(sys.argv[1])
