"""Times the official SOAP's step (CPU, float32, one thread) on the shapes of the `soap-f32`
criterion group and writes the means where `bench_summary` reads them:

    git clone https://github.com/nikhilvyas/SOAP /tmp/SOAP
    python3 benches/soap_torch.py /tmp/SOAP target/criterion/soap-torch.json

Like the criterion group, it takes the first step (the eigendecompositions) untimed, then times
10 steps, one of them a QR refresh (the default frequency of 10), and reports their mean.
"""
import json
import os
import sys
import time

import torch

torch.set_num_threads(1)


def soap_class(checkout):
    namespace = {}
    with open(os.path.join(checkout, "soap.py")) as f:
        exec(compile(f.read(), "soap.py", "exec"), namespace)
    return namespace["SOAP"]


def mean_step(soap, rows, cols):
    p = torch.nn.Parameter(torch.zeros(rows, cols))
    i = torch.arange(rows).unsqueeze(1)
    j = torch.arange(cols).unsqueeze(0)
    p.grad = ((i * 31 + j * 17) % 23).float() / 23.0 - 0.5
    opt = soap([p])
    opt.step()
    times = []
    for _ in range(10):
        t = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t)
    return sum(times) / len(times) * 1e9


def main(checkout, path):
    soap = soap_class(checkout)
    out = {"torch": torch.__version__, "mean_ns": {}}
    for rows, cols in [(512, 512), (1024, 1024), (4096, 1024)]:  # benches/step.rs's shapes
        shape = f"{rows}x{cols}"
        out["mean_ns"][shape] = mean_step(soap, rows, cols)
        print(f"SOAP {shape}: {out['mean_ns'][shape] / 1e6:.1f} ms", file=sys.stderr)
    with open(path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "target/criterion/soap-torch.json")
