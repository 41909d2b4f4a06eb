"""Times the official SOAP's and PSGD Kron's steps (CPU, float32, one thread, their defaults) on
the shapes of the `preconditioned-f32` criterion group and writes the means where
`bench_summary` reads them:

    git clone https://github.com/nikhilvyas/SOAP /tmp/SOAP
    git clone https://github.com/evanatyourservice/kron_torch /tmp/kron_torch
    python3 benches/preconditioned_torch.py /tmp/SOAP /tmp/kron_torch \\
        target/criterion/preconditioned-torch.json

Like the criterion group, it takes the first step untimed (state, SOAP's eigendecompositions),
then times 10 steps (one of SOAP's a QR refresh) and reports their mean. Kron runs as shipped,
its kernels compiled by `torch.compile` (warmed up by the untimed step).
"""
import json
import os
import sys
import time

import torch

torch.set_num_threads(1)


def load(path, name):
    namespace = {"__name__": name}
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), namespace)
    return namespace


def mean_step(make, rows, cols):
    p = torch.nn.Parameter(torch.zeros(rows, cols))
    i = torch.arange(rows).unsqueeze(1)
    j = torch.arange(cols).unsqueeze(0)
    p.grad = ((i * 31 + j * 17) % 23).float() / 23.0 - 0.5
    opt = make([p])
    opt.step()
    times = []
    for _ in range(10):
        t = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t)
    return sum(times) / len(times) * 1e9


def main(soap_checkout, kron_checkout, path):
    makers = {
        "SOAP": load(os.path.join(soap_checkout, "soap.py"), "soap")["SOAP"],
        "Kron": load(os.path.join(kron_checkout, "kron_torch", "kron.py"), "kron")["Kron"],
    }
    out = {"torch": torch.__version__, "mean_ns": {name: {} for name in makers}}
    for rows, cols in [(512, 512), (1024, 1024), (4096, 1024)]:  # benches/step.rs's shapes
        shape = f"{rows}x{cols}"
        for name, make in makers.items():
            out["mean_ns"][name][shape] = mean_step(make, rows, cols)
            print(f"{name} {shape}: {out['mean_ns'][name][shape] / 1e6:.1f} ms", file=sys.stderr)
    with open(path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2],
         sys.argv[3] if len(sys.argv) > 3 else "target/criterion/preconditioned-torch.json")
