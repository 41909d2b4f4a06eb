import json, torch
from torch.optim.lr_scheduler import OneCycleLR, CyclicLR
cases = [
  ("OneCycleLR", "SGD", dict(max_lr=0.1, total_steps=30, three_phase=True)),
  ("OneCycleLR", "Adam", dict(max_lr=0.05, total_steps=25, pct_start=0.4, anneal_strategy="linear", three_phase=True, base_momentum=0.8, max_momentum=0.9, div_factor=10.0, final_div_factor=100.0)),
  ("OneCycleLR", "SGD", dict(max_lr=0.2, total_steps=17, anneal_strategy="linear")),
  ("CyclicLR", "SGD", dict(base_lr=0.01, max_lr=0.1, step_size_up=4, step_size_down=6, mode="triangular2")),
  ("CyclicLR", "Adam", dict(base_lr=0.001, max_lr=0.01, step_size_up=3, mode="exp_range", gamma=0.97, base_momentum=0.85, max_momentum=0.95)),
]
out = []
for cls, optname, args in cases:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.01, momentum=0.9) if optname == "SGD" else torch.optim.Adam([p], lr=0.001)
    s = (OneCycleLR if cls == "OneCycleLR" else CyclicLR)(opt, **args)
    lrs, ms = [], []
    n = args.get("total_steps", 30)
    for i in range(n):
        g = opt.param_groups[0]
        lrs.append(g["lr"]); ms.append(g["momentum"] if optname == "SGD" else g["betas"][0])
        opt.step(); s.step()
    out.append(dict(scheduler=cls, optimizer=optname, args=args, lr_per_step=lrs, momentum_per_step=ms))
json.dump(dict(reference="torch.optim.lr_scheduler " + torch.__version__ + ", momentum cycling", cases=out), open("torch_cycle_momentum_modes.json", "w"), indent=1)
print("ok")
