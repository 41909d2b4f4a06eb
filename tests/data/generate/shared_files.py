"""Regenerates the shared reference files of `tests/data/` from their own inputs.

The files copied from the project's shared conformance set carry their inputs (`initial`,
`grads`, `lr_per_step`, a problem or a schedule) beside the outputs. This script recomputes every
output field of each such file with the reference it names, from those inputs, and either checks
it against the file (`--check`: prints the largest relative difference per file, 0 for a file it
reproduces bit for bit) or writes it back (`--write`). Run from the repository root with the
references' versions: PyTorch 2.15.0, optax 0.2.8 with jax 0.10.2, schedulefree 1.4.1,
torch-optimi 0.3.3, NumPy 2:

    python3 tests/data/generate/shared_files.py --check tests/data

Families: `book_*` (the book's NumPy classes, written out below from *Deep Learning from
Scratch*, `common/optimizer.py`), `book_fig6_8.json`, `torch_*` (torch.optim, its schedulers,
swa_utils, L-BFGS, `clip_grad_norm_`), `torchfp_muon_*` (torch's Muon with Newton-Schulz in the
parameter's dtype), `optax_*` (aliases and wrappers), `sf_*` (schedulefree), `optimi_*`
(torch-optimi on bfloat16), with the learning-rate-free optax files, `optax_mechanize_*`,
`optax_polyak_*` and `sf_radam_*`. The generated families (`*_gen_*`, `optax_opt_*`) have their
own scripts in this folder; `NOT_RECOMPUTED` below lists the shared families left as shipped.
"""
import copy
import json
import math
import os
import sys

import numpy as np

# ---------------------------------------------------------------- arrays ---------------------

DT = {"f64": np.float64, "f32": np.float32}


def arrays(tree, dtype):
    return {k: np.array(v["data"], dtype=dtype).reshape(v["shape"]) for k, v in tree.items()}


def written(tree):
    return {k: {"shape": list(np.shape(v)), "data": [float(x) for x in np.asarray(v, dtype=np.float64).ravel()]}
            for k, v in tree.items()}


def difference(a, b):
    """Largest `|a - b| / max(1, |b|)` over two values of the same structure (0 if identical)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return math.inf
        return max((difference(a[k], b[k]) for k in a), default=0.0)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return math.inf
        return max((difference(x, y) for x, y in zip(a, b)), default=0.0)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        if a == b or (a != a and b != b):
            return 0.0
        return abs(a - b) / max(1.0, abs(b))
    return 0.0 if a == b else math.inf


# ---------------------------------------------------------------- the book -------------------

class BookSGD:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for key in params:
            params[key] -= self.lr * grads[key]


class BookMomentum:
    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        for key in params:
            self.v[key] = self.momentum * self.v[key] - self.lr * grads[key]
            params[key] += self.v[key]


class BookNesterov:
    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        for key in params:
            self.v[key] *= self.momentum
            self.v[key] -= self.lr * grads[key]
            params[key] += self.momentum * self.momentum * self.v[key]
            params[key] -= (1 + self.momentum) * self.lr * grads[key]


class BookAdaGrad:
    def __init__(self, lr=0.01):
        self.lr, self.h = lr, None

    def update(self, params, grads):
        if self.h is None:
            self.h = {k: np.zeros_like(v) for k, v in params.items()}
        for key in params:
            self.h[key] += grads[key] * grads[key]
            params[key] -= self.lr * grads[key] / (np.sqrt(self.h[key]) + 1e-7)


class BookRMSprop:
    def __init__(self, lr=0.01, decay_rate=0.99):
        self.lr, self.decay_rate, self.h = lr, decay_rate, None

    def update(self, params, grads):
        if self.h is None:
            self.h = {k: np.zeros_like(v) for k, v in params.items()}
        for key in params:
            self.h[key] *= self.decay_rate
            self.h[key] += (1 - self.decay_rate) * grads[key] * grads[key]
            params[key] -= self.lr * grads[key] / (np.sqrt(self.h[key]) + 1e-7)


class BookAdam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2, self.iter, self.m, self.v = lr, beta1, beta2, 0, None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = {k: np.zeros_like(v) for k, v in params.items()}
            self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for key in params:
            self.m[key] += (1 - self.beta1) * (grads[key] - self.m[key])
            self.v[key] += (1 - self.beta2) * (grads[key] ** 2 - self.v[key])
            params[key] -= lr_t * self.m[key] / (np.sqrt(self.v[key]) + 1e-7)


BOOK = {"SGD": BookSGD, "Momentum": BookMomentum, "Nesterov": BookNesterov, "AdaGrad": BookAdaGrad,
        "RMSprop": BookRMSprop, "Adam": BookAdam}


def book(t):
    dtype = DT[t["dtype"]]
    opt = BOOK[t["optimizer"]](**t["hyperparameters"])
    params = arrays(t["initial"], dtype)
    expected = []
    for g in t["grads"]:
        opt.update(params, arrays(g, dtype))
        expected.append(written(params))
    return {"expected": expected}


def book_fig6_8(t):
    def df(x, y):
        return x / 10.0, 2.0 * y
    runs = {}
    for name, run in t["runs"].items():
        opt = BOOK[name](**run["hyperparameters"])
        params = {"x": t["start"][0], "y": t["start"][1]}
        path = [[params["x"], params["y"]]]
        for _ in range(t["steps"]):
            gx, gy = df(params["x"], params["y"])
            opt.update(params, {"x": gx, "y": gy})
            path.append([float(params["x"]), float(params["y"])])
        runs[name] = {"hyperparameters": run["hyperparameters"], "path": path}
    return {"runs": runs}


# ---------------------------------------------------------------- PyTorch --------------------

def torch_dtype(name):
    import torch
    return {"f64": torch.float64, "f32": torch.float32, "bf16": torch.bfloat16}[name]


def torch_params(t):
    import torch
    td = torch_dtype(t["dtype"])
    return {k: torch.nn.Parameter(torch.tensor(np.array(v["data"], dtype=np.float64).reshape(v["shape"])).to(td))
            for k, v in t["initial"].items()}


def tensors_written(params):
    import torch
    return written({k: p.detach().to(torch.float64).numpy() for k, p in params.items()})


def torch_optimizer(name, params, hyper):
    import inspect
    import torch
    cls = getattr(torch.optim, name)
    accepted = inspect.signature(cls).parameters
    # The files list AdamW's `decoupled_weight_decay` (always true), which AdamW does not take.
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in hyper.items() if k in accepted}
    if "foreach" in accepted:
        kwargs["foreach"] = False
    return cls(list(params.values()), **kwargs)


def averaged(params, averaging):
    import torch
    from torch.optim import swa_utils
    model = torch.nn.ParameterDict(params)
    if averaging["kind"] == "ema":
        return model, swa_utils.AveragedModel(
            model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(averaging["decay"]))
    return model, swa_utils.AveragedModel(model)


def scheduler(opt, described):
    from torch.optim import lr_scheduler, swa_utils
    cls_path = described["class"]
    cls = getattr(swa_utils if "swa_utils" in cls_path else lr_scheduler, cls_path.rsplit(".", 1)[1])
    return cls(opt, **described["args"])


def torch_trajectory(t):
    import torch
    params = torch_params(t)
    opt = torch_optimizer(t["optimizer"], params, t["hyperparameters"])
    sched = scheduler(opt, t["scheduler"]) if t.get("scheduler") else None
    model, avg = averaged(params, t["averaging"]) if t.get("averaging") else (None, None)
    td = torch_dtype(t["dtype"])
    out = {"expected": [], "expected_average": [], "lr_per_step": [], "momentum_per_step": [],
           "beta1_per_step": []}
    group = opt.param_groups[0]
    for i, g in enumerate(t["grads"]):
        if t.get("lr_per_step") and sched is None:
            group["lr"] = t["lr_per_step"][i]
        out["lr_per_step"].append(group["lr"])
        if "momentum" in group:
            out["momentum_per_step"].append(group["momentum"])
        if "betas" in group:
            out["beta1_per_step"].append(group["betas"][0])
        for k, p in params.items():
            p.grad = torch.tensor(np.array(g[k]["data"], dtype=np.float64).reshape(g[k]["shape"])).to(td)
        opt.step()
        out["expected"].append(tensors_written(params))
        if avg is not None:
            avg.update_parameters(model)
            out["expected_average"].append(tensors_written(dict(avg.module.items())))
        if sched is not None:
            sched.step()
    return {k: v for k, v in out.items() if k in t and (k != "lr_per_step" or t[k] is not None)}


def torchfp_muon(t):
    import torch
    import torch.optim._muon as muon
    source_dtype = torch.bfloat16
    original_to = torch.Tensor.to

    def own_dtype(self, *args, **kwargs):
        # The one bfloat16 copy Newton-Schulz makes: a copy in the parameter's own dtype instead.
        if kwargs.get("dtype") is source_dtype and kwargs.get("copy"):
            return self.clone()
        return original_to(self, *args, **kwargs)
    torch.Tensor.to = own_dtype
    try:
        return torch_trajectory(t)
    finally:
        torch.Tensor.to = original_to


def lbfgs(t):
    import torch
    problem = t["problem"]
    x = torch.nn.Parameter(torch.tensor(t["initial"]["x"]["data"], dtype=torch.float64))
    h = dict(t["hyperparameters"])
    opt = torch.optim.LBFGS([x], **h)
    if problem["name"] == "rosenbrock":
        def closure():
            opt.zero_grad()
            x0, x1 = x[0], x[1]
            r = x1 - x0 * x0
            f = (1 - x0) ** 2 + 100 * r ** 2
            with torch.no_grad():
                x.grad = torch.stack([-2 * (1 - x0) - 400 * x0 * r, 200 * r]).detach()
            return f.detach()
    else:
        a = torch.tensor(np.array(problem["A"]["data"]).reshape(problem["A"]["shape"]))
        b = torch.tensor(np.array(problem["b"]["data"]))

        def closure():
            opt.zero_grad()
            with torch.no_grad():
                ax = a @ x
                x.grad = (ax - b).detach()
                return 0.5 * torch.dot(x, ax) - torch.dot(b, x)
    out = {"expected": [], "func_evals_per_call": [], "iterations_per_call": [], "loss_per_call": []}
    evals = iters = 0
    for _ in range(t["calls"]):
        loss = opt.step(closure)
        state = opt.state[x]
        out["expected"].append({"x": {"shape": [x.numel()], "data": [float(v) for v in x.detach()]}})
        out["func_evals_per_call"].append(state["func_evals"] - evals)
        out["iterations_per_call"].append(state["n_iter"] - iters)
        out["loss_per_call"].append(float(loss))
        evals, iters = state["func_evals"], state["n_iter"]
    return out


def lr_schedulers(cases):
    import torch
    from torch.optim import lr_scheduler
    out = []
    for c in cases:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=c["base_lr"], momentum=0.9)
        s = getattr(lr_scheduler, c["scheduler"])(opt, **c["args"])
        lrs = []
        for _ in range(len(c["lr_per_step"])):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            s.step()
        out.append(dict(c, lr_per_step=lrs))
    return out


def clip_grad_norm(cases):
    import torch
    out = []
    for c in cases:
        grads = {k: torch.tensor(np.array(v["data"]).reshape(v["shape"])) for k, v in c["grads"].items()}
        params = []
        for g in grads.values():
            p = torch.nn.Parameter(torch.zeros_like(g))
            p.grad = g.clone()
            params.append(p)
        total = torch.nn.utils.clip_grad_norm_(params, c["max_norm"], norm_type=c["norm_type"])
        clipped = written({k: p.grad.numpy() for k, p in zip(grads, params)})
        out.append(dict(c, total_norm=float(total), clipped=clipped))
    return out


# ---------------------------------------------------------------- optax ----------------------

def optax_setup():
    import jax
    jax.config.update("jax_enable_x64", True)


def optax_tx(name, hyper):
    import jax.numpy as jnp
    import optax
    kwargs = dict(hyper)
    kwargs.pop("name", None)
    if isinstance(kwargs.get("clip_value_fn"), str):
        kwargs.pop("clip_value_fn")  # optax's default, `x**0.25`, described in the file
    if isinstance(kwargs.get("ns_coeffs"), list):
        c = kwargs["ns_coeffs"]
        kwargs["ns_coeffs"] = tuple(tuple(r) for r in c) if isinstance(c[0], list) else tuple(c)
    for k in ("accumulator_dtype", "mu_dtype"):
        if isinstance(kwargs.get(k), str):
            kwargs[k] = getattr(jnp, kwargs[k])
    fn = getattr(optax, name, None) or getattr(optax.contrib, name)
    return fn(**kwargs)


def optax_trajectory(t):
    import jax
    import jax.numpy as jnp
    import optax
    dtype = DT[t["dtype"]]
    name, hyper = t["optimizer"], dict(t["hyperparameters"])
    as_jax = lambda tree: {k: jnp.asarray(v) for k, v in arrays(tree, dtype).items()}  # noqa: E731
    out = {"expected": []}
    if name == "lookahead":
        tx = optax.lookahead(optax_tx(t["fast_optimizer"]["name"], t["fast_optimizer"]), **hyper)
        params = optax.LookaheadParams.init_synced(as_jax(t["initial"]))
        out["expected_slow"] = []
    elif name == "mechanize":
        base = t["base_optimizer"]
        hyper.pop("base_optimizer")
        tx = optax.contrib.mechanize(optax_tx(base["name"], base["hyperparameters"]), **hyper)
        params = as_jax(t["initial"])
        out["s_per_step"] = []
    elif name == "MultiSteps":
        hyper["accumulator_dtype"] = getattr(jnp, hyper["accumulator_dtype"])
        tx = optax.MultiSteps(optax_tx(t["inner_optimizer"]["name"], t["inner_optimizer"]), **hyper)
        params = as_jax(t["initial"])
    else:
        tx = optax_tx(name, hyper)
        params = as_jax(t["initial"])
    avg = None
    if t.get("averaging"):
        a = t["averaging"]
        avg = optax.ema(a["decay"], debias=a["debias"], accumulator_dtype=a["accumulator_dtype"])
        out["expected_average"] = []
    state = tx.init(params)
    avg_state = avg.init(params) if avg else None

    @jax.jit
    def step(g, state, params, extra):
        updates, state = tx.update(g, state, params, **extra)
        return optax.apply_updates(params, updates), state

    @jax.jit
    def average(params, avg_state):
        return avg.update(params, avg_state)

    for i, g in enumerate(t["grads"]):
        # polyak_sgd's loss, given to each update.
        extra = {"value": jnp.asarray(t["loss_per_step"][i], dtype)} if "loss_per_step" in t else {}
        params, state = step(as_jax(g), state, params, extra)
        if name == "mechanize":
            out["s_per_step"].append([float(x) for x in np.asarray(state.s)])
        if name == "lookahead":
            out["expected"].append(written(params.fast))
            out["expected_slow"].append(written(params.slow))
        else:
            out["expected"].append(written(params))
        if avg:
            value, avg_state = average(params, avg_state)
            out["expected_average"].append(written(value))
    return out


# ---------------------------------------------------------------- schedulefree ---------------

def schedule_free(t):
    import torch
    import schedulefree
    params = torch_params(t)
    cls = getattr(schedulefree, t["optimizer"])
    hyper = {k: (tuple(v) if isinstance(v, list) else v) for k, v in t["hyperparameters"].items()}
    hyper["foreach"] = False
    opt = cls(list(params.values()), **hyper)
    opt.train()
    td = torch_dtype(t["dtype"])
    out = {"expected": [], "expected_eval": []}
    for g in t["grads"]:
        for k, p in params.items():
            p.grad = torch.tensor(np.array(g[k]["data"], dtype=np.float64).reshape(g[k]["shape"])).to(td)
        opt.step()
        out["expected"].append(tensors_written(params))
        # The evaluation point on a copy: eval() then train() need not give y back bit for bit.
        twin_params, twin = copy.deepcopy((params, opt))
        twin.eval()
        out["expected_eval"].append(tensors_written(twin_params))
    return out


# ---------------------------------------------------------------- torch-optimi ---------------

def optimi_trajectory(t):
    import torch
    import optimi
    params = torch_params(t)
    hyper = {k: (tuple(v) if isinstance(v, list) else v) for k, v in t["hyperparameters"].items()}
    opt = getattr(optimi, t["optimizer"])(list(params.values()), foreach=False, triton=False, **hyper)
    td = torch_dtype(t["dtype"])
    out = {"expected": [], "expected_state": []}
    for i, g in enumerate(t["grads"]):
        if t.get("lr_per_step"):
            opt.param_groups[0]["lr"] = t["lr_per_step"][i]
        for k, p in params.items():
            p.grad = torch.tensor(np.array(g[k]["data"], dtype=np.float64).reshape(g[k]["shape"])).to(td)
        opt.step()
        out["expected"].append(tensors_written(params))
        out["expected_state"].append({
            k: {name: (None if v is None else tensors_written({"x": v})["x"])
                for name, v in opt.state[p].items() if name != "step" and (v is None or torch.is_tensor(v))}
            for k, p in params.items()})
    return out


# ---------------------------------------------------------------- main -----------------------

# Shared families this script does not recompute; the conformance test replays them as shipped,
# and the generators named beside them run the same reference code over other arguments.
NOT_RECOMPUTED = (
    "prodigy_", "dadapt_",  # learning_rate_free.py
    "cautious_",  # cautious.py (C-Optim is not a package)
    "sf_wrapper_",  # schedule_free_options.py
    "optax_sam_",  # optax_sam.py (closure-style)
    "optax_inject_", "optax_schedules",  # schedules.py; the schedules are described, not built
)

def regenerate(name, t):
    """The output fields of the shared file `name` recomputed from its inputs (None: not ours)."""
    if "_gen_" in name or name.startswith("optax_opt_") or name == "torch_cycle_momentum_modes.json":
        return None  # their own generators
    if name.startswith(NOT_RECOMPUTED):
        return None
    if name == "book_fig6_8.json":
        return book_fig6_8(t)
    if name.startswith("book_"):
        return book(t)
    if name == "torch_lr_schedulers.json":
        return lr_schedulers(t)
    if name == "torch_clip_grad_norm.json":
        return clip_grad_norm(t)
    if name.startswith("torch_lbfgs_"):
        return lbfgs(t)
    if name.startswith("torchfp_muon_"):
        return torchfp_muon(t)
    if name.startswith("torch_"):
        return torch_trajectory(t)
    if name.startswith("optax_"):
        optax_setup()
        return optax_trajectory(t)
    if name.startswith("sf_"):
        return schedule_free(t)
    if name.startswith("optimi_"):
        return optimi_trajectory(t)
    return None


def main(mode, folder, only=None):
    worst_all = 0.0
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json") or (only and only not in name):
            continue
        path = os.path.join(folder, name)
        with open(path) as f:
            t = json.load(f)
        new = regenerate(name, t)
        if new is None:
            continue
        if isinstance(new, list):
            d = difference(new, t)
        else:
            d = max((difference(v, t.get(k)) for k, v in new.items()), default=0.0)
        worst_all = max(worst_all, d)
        print(f"{name:<100} {d:.2e}")
        if mode == "--write":
            if isinstance(new, dict):
                t.update(new)
            else:
                t = new
            with open(path, "w") as f:
                json.dump(t, f)
    print(f"largest difference {worst_all:.2e}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
