"""PSGD Kron (kron_torch) over the arguments the shared `kron_*` files leave out, its draws recorded.

Writes `kron_gen_<options>_<dtype>.json` into the folder given: 40 steps, the learning rate changed
before every step, with an annealed update schedule and a fixed probability of 0.3, every
`memory_save_mode`, unmerged rank-3 keys, triangular factors on vectors, and the other arguments
away from their defaults. As in the shared files, the reference runs eagerly
(`TORCH_COMPILE_DISABLE=1`, set here), its preconditioners in the parameters' dtype, and for f64
without the float32 casts of `_solve_triangular_right`; the normals of `torch.randn_like` and the
uniform draws of its `random.Random(42)` are recorded in the files (`precond_random_normals`,
`rng_uniform_per_step`), with the update decisions they lead to. The reference is
`kron_torch/kron.py` (GitHub evanatyourservice/kron_torch, commit 884427c): pass a checkout. Run
from the repository root:

    git clone https://github.com/evanatyourservice/kron_torch /tmp/kron_torch
    git -C /tmp/kron_torch checkout 884427c
    python3 tests/data/generate/kron.py /tmp/kron_torch tests/data
"""
import os
import sys

os.environ["TORCH_COMPILE_DISABLE"] = "1"

import torch  # noqa: E402

from inputs import DTYPES, draw, fields, lr_per_step, spelled, torch_step, write  # noqa: E402

STEPS = 40
SHAPES = {"W": (6, 4), "conv": (4, 3, 2, 2), "cube": (2, 3, 4), "b": (5,)}
SCHEDULE = dict(max_prob=1.0, min_prob=0.2, decay=0.1, flat_start=5)

CASES = [
    dict(schedule=SCHEDULE, memory_save_mode="smart_one_diag", merge_dims=False, b1=0.8,
         precond_lr=0.2, precond_init_scale=2.0),
    dict(preconditioner_update_probability=0.3, memory_save_mode="all_diag", weight_decay=0.05),
    dict(preconditioner_update_probability=0.5, memory_save_mode="one_diag",
         max_size_triangular=4, min_ndim_triangular=1, momentum_into_precond_update=False),
]


def reference(checkout, f64):
    """kron.py's module namespace; for f64, without the float32 casts of the triangular solve."""
    with open(os.path.join(checkout, "kron_torch", "kron.py")) as f:
        source = f.read()
    if f64:
        assert source.count(".float()") == 2
        source = source.replace(".float()", "")
    namespace = {"__name__": "kron_torch_kron"}
    exec(compile(source, "kron_torch/kron.py", "exec"), namespace)
    return namespace


class Recorded:
    """`random.Random` recording its draws."""

    def __init__(self, rng, into):
        self.rng, self.into = rng, into

    def random(self):
        x = self.rng.random()
        self.into.append(x)
        return x


def main(checkout, out):
    for seed, case in enumerate(CASES):
        for dname, dtype in DTYPES.items():
            module = reference(checkout, dname == "f64")
            options = {k: v for k, v in case.items() if k != "schedule"}
            if "schedule" in case:
                options["preconditioner_update_probability"] = \
                    module["precond_update_prob_schedule"](**case["schedule"])
            options["precond_dtype"] = torch.float64 if dname == "f64" else torch.float32
            initial, grads = draw(2100 + seed, SHAPES, STEPS, dtype)
            lrs = [float(dtype(x)) for x in lr_per_step(3e-4, STEPS)]
            params = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in initial.items()}
            opt = module["Kron"](list(params.values()), **options)
            uniform, normals = [], []
            opt.rng = Recorded(opt.rng, uniform)
            real = torch.randn_like
            drawn = []
            torch.randn_like = lambda g: drawn.append(real(g)) or drawn[-1]
            expected, per_step = [], []
            try:
                for lr, g in zip(lrs, grads):
                    drawn.clear()
                    expected.append(torch_step(opt, params, lr, g))
                    # One draw per key, in key order, at the steps that update.
                    keys = list(params) if drawn else []
                    assert len(drawn) in (0, len(params))
                    per_step.append({k: {"shape": list(v.shape),
                                         "data": [float(x) for x in v.flatten()]}
                                     for k, v in zip(keys, drawn)})
            finally:
                torch.randn_like = real
            hyper = {"lr": 3e-4, "b1": 0.9, "weight_decay": 0.0,
                     "preconditioner_update_probability": None, "max_size_triangular": 8192,
                     "min_ndim_triangular": 2, "memory_save_mode": None,
                     "momentum_into_precond_update": True, "precond_lr": 0.1,
                     "precond_init_scale": 1.0, "merge_dims": True, "mu_dtype": None,
                     **{k: v for k, v in options.items() if k != "precond_dtype"},
                     "precond_dtype": "float64" if dname == "f64" else "float32"}
            if "schedule" in case:
                hyper["preconditioner_update_probability"] = {
                    "schedule": "precond_update_prob_schedule", **case["schedule"]}
            updates = [bool(s) for s in per_step]
            shown = {k: v for k, v in case.items() if k != "schedule"}
            if "schedule" in case:
                shown = {"schedule": "annealed", **shown}
            write(out, f"kron_gen_{spelled(shown)}_{dname}.json", {
                "optimizer": "Kron",
                "reference": "kron_torch.Kron (evanatyourservice/kron_torch kron_torch/kron.py @"
                             f" 884427c; PyTorch {torch.__version__.split('+')[0]}, CPU), eager"
                             " (TORCH_COMPILE_DISABLE=1), preconditioners in the parameters' dtype"
                             + (" and the float32 casts of _solve_triangular_right removed"
                                if dname == "f64" else "")
                             + "; generated by tests/data/generate/kron.py",
                **fields(dname, hyper, lrs, initial, grads, expected),
                "rng_uniform_per_step": uniform,
                "do_update_per_step": updates,
                "precond_random_normals": per_step,
            })


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
