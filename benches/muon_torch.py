"""Times one torch.optim.Muon step (CPU, float32, one thread) on the shapes of the `muon-f32`
criterion group, as shipped (Newton-Schulz in bfloat16) and with Newton-Schulz in float32 (the
arithmetic ndoptim runs), and writes the medians where `bench_summary` reads them (this takes
about ten minutes, most of it the 4096 x 4096 steps):

    python3 benches/muon_torch.py target/criterion/muon-torch.json
"""
import json
import sys
import time

import torch

import torch.optim._muon as muon

torch.set_num_threads(1)
shipped = muon._zeropower_via_newtonschulz


def in_own_dtype(grad, ns_coefficients, ns_steps, eps):
    """torch's function with its bfloat16 copy made in the gradient's own dtype."""
    real = torch.bfloat16
    torch.bfloat16 = grad.dtype
    try:
        return shipped(grad, ns_coefficients, ns_steps, eps)
    finally:
        torch.bfloat16 = real


def median_step(rows, cols):
    p = torch.nn.Parameter(torch.zeros(rows, cols))
    i = torch.arange(rows).unsqueeze(1)
    j = torch.arange(cols).unsqueeze(0)
    p.grad = ((i * 31 + j * 17) % 23).float() / 23.0 - 0.5
    opt = torch.optim.Muon([p])
    # Steps of seconds (4096 x 4096) are timed as few times as criterion's (10 samples of one).
    large = rows * cols > 1 << 20
    for _ in range(1 if large else 3):
        opt.step()
    times = []
    for _ in range(10 if large else 20):
        t = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2] * 1e9


out = {"median_ns": {}, "median_ns_f32": {}}
SHAPES = [(256, 256), (256, 1024), (1024, 256), (512, 512), (1024, 1024), (1024, 4096),
          (4096, 1024), (2048, 2048), (4096, 4096)]  # benches/step.rs's MUON_SHAPES
for rows, cols in SHAPES:
    shape = f"{rows}x{cols}"
    muon._zeropower_via_newtonschulz = shipped
    out["median_ns"][shape] = median_step(rows, cols)
    muon._zeropower_via_newtonschulz = in_own_dtype
    out["median_ns_f32"][shape] = median_step(rows, cols)
    print(f"torch.optim.Muon {shape}: bf16 NS {out['median_ns'][shape] / 1e3:.1f} us, "
          f"f32 NS {out['median_ns_f32'][shape] / 1e3:.1f} us", file=sys.stderr)
with open(sys.argv[1] if len(sys.argv) > 1 else "target/criterion/muon-torch.json", "w") as f:
    json.dump({"torch": torch.__version__, **out}, f)
