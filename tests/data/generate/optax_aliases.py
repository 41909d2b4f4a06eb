"""optax's optimizers that ndoptim follows, over their arguments, long runs and odd keys.

Writes `optax_gen_<alias>_<options>_<dtype>.json` into the folder given: 200 steps, the learning
rate changed before every step (`lr_per_step`, through `optax.inject_hyperparams` with only
`learning_rate` injected, in the parameters' dtype), keys of shape (3, 4), (), (0, 3) and
(2, 1, 2, 3) (Muon: matrices (6, 4) and (3, 5) beside the odd keys, which go to its AdamW
fallback); `hyperparameters` holds every argument, defaults included. `polyak_sgd` injects its
`scaling` instead and is given the loss `value=` of `loss_per_step` (drawn in [0, 2]). Each step runs `tx.update`
and `optax.apply_updates` under `jax.jit`. Run from the repository root with optax 0.2.8 and
jax 0.10.2:

    python3 tests/data/generate/optax_aliases.py tests/data
"""
import inspect
import sys

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from inputs import DTYPES, ODD_SHAPES, draw, fields, lr_per_step, spelled, write, written  # noqa: E402
from optax_wrappers import jitted  # noqa: E402

# optax's Muon divides by a matrix's first side: an empty 2-D key fails there, so its empty key is 1-D.
MUON_SHAPES = {"W1": (6, 4), "W2": (3, 5), "scalar": (), "empty": (0,), "conv": (2, 1, 2, 3)}
# optax's sm3 fails on a 0-d key and takes the maximum over an empty axis: a vector instead.
SM3_SHAPES = {"W": (3, 4), "vector": (5,), "conv": (2, 1, 2, 3)}

# (alias, options): every argument that changes the arithmetic, in at least one case.
CASES = [
    ("sgd", dict(learning_rate=0.01, momentum=0.9, nesterov=True)),
    ("sgd", dict(learning_rate=0.01)),
    ("adam", dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-6)),
    ("lion", dict(learning_rate=0.001, b1=0.95, b2=0.98, weight_decay=0.01)),
    ("lamb", dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-5, eps_root=1e-8, weight_decay=0.01)),
    ("lars", dict(learning_rate=0.5, weight_decay=0.01, trust_coefficient=0.01, eps=1e-4,
                  momentum=0.8, nesterov=True)),
    ("adan", dict(learning_rate=0.01, b1=0.9, b2=0.9, b3=0.95, eps=1e-6, eps_root=1e-6,
                  weight_decay=0.01)),
    ("adabelief", dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-10, eps_root=1e-12, nesterov=True)),
    ("adopt", dict(learning_rate=0.01, b1=0.8, b2=0.999, eps=1e-5, nesterov=True)),
    # Unclipped, ADOPT divides a gradient by the root of the previous step's square: with the
    # inputs' exact zeros and ε 1e-6 that is up to 1e9, and f32 results then depend on XLA's
    # operation order at the last bit of huge intermediate values. ε 1e-2 keeps the case
    # well-conditioned.
    ("adopt", dict(learning_rate=0.01, eps=1e-2, use_clipping=False)),
    ("ademamix", dict(learning_rate=0.01, b1=0.8, b2=0.99, b3=0.999, alpha=3.0, eps=1e-6,
                      eps_root=1e-9, weight_decay=0.01)),
    ("muon", dict(learning_rate=0.01, beta=0.9, weight_decay=0.01, nesterov=False,
                  adam_b1=0.8, adam_b2=0.99, adam_weight_decay=0.02)),
    ("muon", dict(learning_rate=0.01, ns_steps=3, eps=1e-6, adam_eps_root=1e-8,
                  adam_learning_rate=0.003)),
    # New cases go last: each case's inputs are drawn from its position.
    ("adam", dict(learning_rate=0.01, b1=0.85, eps=1e-7, eps_root=1e-8, nesterov=True)),
    ("amsgrad", dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-9,
                     bias_correction_mu=False, bias_correction_nu=False)),
    ("adamaxw", dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-6, weight_decay=0.01)),
    # β₂ 0.99 reaches the threshold 6 at step 7, so the run crosses from momentum to rectified.
    ("radam", dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-9, threshold=6.0,
                   nesterov=True)),
    ("optimistic_gradient_descent", dict(learning_rate=0.01, alpha=0.5, beta=0.3)),
    ("optimistic_adam", dict(learning_rate=0.01, optimism=0.02, b1=0.8, b2=0.99, eps=1e-6,
                             eps_root=1e-9, nesterov=False)),
    ("optimistic_adam_v2", dict(learning_rate=0.01, alpha=0.7, beta=0.4, b1=0.8, b2=0.99,
                                eps=1e-6, eps_root=1e-9, nesterov=False)),
    ("yogi", dict(learning_rate=0.01, b1=0.8, b2=0.99, eps=1e-4)),
    ("novograd", dict(learning_rate=0.01, b1=0.8, b2=0.5, eps=1e-5, eps_root=1e-8,
                      weight_decay=0.01)),
    ("fromage", dict(learning_rate=0.05, min_norm=1e-3)),
    ("cocob", dict(learning_rate=0.5, alpha=50.0, eps=1e-6, weight_decay=0.01)),
    ("madgrad", dict(learning_rate=0.02, momentum=0.5, weight_decay=0.01, eps=1e-5)),
    ("dog", dict(learning_rate=1.0, init_step=("learning_rate", 1e-3), eps=1e-6)),
    ("dog", dict(learning_rate=1.0, init_step=("heuristic", 1e-4), weight_decay=0.01)),
    ("dowg", dict(learning_rate=1.0, init_estim_sq_dist=1e-4, eps=1e-6, weight_decay=0.01)),
    ("sm3", dict(learning_rate=0.01, momentum=0.5)),
    ("sm3", dict(learning_rate=0.01, momentum=0.8, b2=0.9, eps=1e-6)),
]

# optimistic_adam reads its learning rate as a coefficient and refuses schedules: a constant rate.
CONSTANT_RATE = {"optimistic_adam"}
# madgrad rounds a constant Python-float rate to float32 but not an injected one: it runs
# without inject_hyperparams, at its constant rate (`lr_per_step` null).
PLAIN = {"madgrad"}

POLYAK_CASES = [
    dict(max_learning_rate=0.5, scaling=1.0, f_min=0.1, eps=1e-3, variant="sps+"),
    dict(max_learning_rate=10.0, scaling=0.5, f_min=-0.5),
]


def sm3(learning_rate, momentum=0.9, b2=1.0, eps=1e-8):
    """optax.sm3 written as its chain, with scale_by_sm3's b2 and eps, which the alias fixes."""
    return optax.chain(optax.scale_by_sm3(momentum, b2, eps), optax.scale(-learning_rate))


def alias(name):
    if name == "sm3":
        return sm3
    return getattr(optax, name, None) or getattr(optax.contrib, name)


def every_argument(fn, options):
    out = {}
    for name, p in inspect.signature(fn).parameters.items():
        value = options.get(name, None if p.default is inspect.Parameter.empty else p.default)
        if callable(value):
            value = "lambda x: x**0.25 (x = number of steps taken before this one)"
        if isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


def main(out):
    for seed, (name, options) in enumerate(CASES):
        fn = alias(name)
        numeric = [k for k in inspect.signature(fn).parameters if k != "learning_rate"]
        shapes = {"muon": MUON_SHAPES, "sm3": SM3_SHAPES}.get(name, ODD_SHAPES)
        for dname, dtype in DTYPES.items():
            initial, grads = draw(4000 + seed, shapes, dtype=dtype)
            lrs = [float(dtype(x)) for x in lr_per_step(options["learning_rate"])]
            if name in CONSTANT_RATE:
                lrs = [float(dtype(options["learning_rate"]))] * len(lrs)
            tx = optax.inject_hyperparams(fn, static_args=numeric, hyperparam_dtype=dtype)(**options)
            if name in PLAIN:
                tx, lrs = fn(**options), None
            params = {k: jnp.asarray(v) for k, v in initial.items()}
            state = tx.init(params)

            step = jitted(tx)

            expected = []
            for lr, g in zip(lrs or [None] * len(grads), grads):
                if lr is not None:
                    state.hyperparams["learning_rate"] = jnp.asarray(lr, dtype=dtype)
                params, state = step({k: jnp.asarray(v) for k, v in g.items()}, state, params)
                expected.append(written(params))
            shown = {k: v for k, v in options.items() if k != "learning_rate"}
            write(out, f"optax_gen_{name}_{spelled(shown)}_{dname}.json", {
                "optimizer": name,
                "reference": f"optax.{'contrib.' if not hasattr(optax, name) else ''}{name}"
                             f"{' (its chain, scale_by_sm3 then scale)' if name == 'sm3' else ''} (optax"
                             f" {optax.__version__}, jax {jax.__version__} (x64 enabled, CPU,"
                             " jit-compiled update + optax.apply_updates)); generated by"
                             " tests/data/generate/optax_aliases.py",
                **fields(dname, every_argument(fn, options), lrs, initial, grads, expected),
            })
    for seed, options in enumerate(POLYAK_CASES):
        polyak(out, seed, options)


def polyak(out, seed, options):
    fn = optax.polyak_sgd
    numeric = [k for k in inspect.signature(fn).parameters if k != "scaling"]
    for dname, dtype in DTYPES.items():
        initial, grads = draw(4500 + seed, ODD_SHAPES, dtype=dtype)
        lrs = [float(dtype(x)) for x in lr_per_step(options["scaling"])]
        losses = [float(dtype(x)) for x in np.random.default_rng(4600 + seed).uniform(0, 2, 200)]
        tx = optax.inject_hyperparams(fn, static_args=numeric, hyperparam_dtype=dtype)(**options)
        params = {k: jnp.asarray(v) for k, v in initial.items()}
        state = tx.init(params)

        @jax.jit
        def step(g, state, params, value):
            updates, state = tx.update(g, state, params, value=value)
            return optax.apply_updates(params, updates), state

        expected = []
        for lr, loss, g in zip(lrs, losses, grads):
            state.hyperparams["scaling"] = jnp.asarray(lr, dtype=dtype)
            g = {k: jnp.asarray(v) for k, v in g.items()}
            params, state = step(g, state, params, jnp.asarray(loss, dtype=dtype))
            expected.append(written(params))
        shown = {k: v for k, v in options.items() if k != "scaling"}
        write(out, f"optax_gen_polyak_sgd_{spelled(shown)}_{dname}.json", {
            "optimizer": "polyak_sgd",
            "reference": f"optax.polyak_sgd (optax {optax.__version__}, jax {jax.__version__} (x64"
                         " enabled, CPU, jit-compiled update + optax.apply_updates)); generated by"
                         " tests/data/generate/optax_aliases.py",
            **fields(dname, every_argument(fn, options), lrs, initial, grads, expected,
                     loss_per_step=losses),
        })


if __name__ == "__main__":
    main(sys.argv[1])
