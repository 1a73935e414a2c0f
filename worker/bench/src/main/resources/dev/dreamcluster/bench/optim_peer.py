"""Peer for `bin/bench optim --peer`: torch.optim.AdamW and lion-pytorch's update_fn (in torch ops),
driven line by line from the Java bench so that the two interleave on the same cores.

stdin:  "<optimizer> <threads> <steps>"   (optimizer: adamw | lion)
stdout: "<seconds per step>" (median-free: total time / steps), or "error <text>"
The first command for an optimizer allocates the tensors and takes one untimed step.
"""
import sys
import time

import torch

N = int(sys.argv[1])
torch.manual_seed(1)
params = torch.randn(N) * 0.02
grads = torch.randn(N) * 1e-3
state = {}


def lion_update(p, grad, exp_avg, lr, wd, beta1, beta2):
    # lion_pytorch/lion_pytorch.py update_fn, lines 14-26 (HEAD 6a74fdc)
    p.data.mul_(1 - lr * wd)
    update = exp_avg.clone().mul_(beta1).add(grad, alpha=1 - beta1).sign_()
    p.add_(update, alpha=-lr)
    exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)


def make(name):
    p = torch.nn.Parameter(params.clone())
    p.grad = grads.clone()
    if name == "adamw":
        opt = torch.optim.AdamW([p], lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
        return lambda: opt.step()
    if name == "lion":
        m = torch.zeros(N)
        return lambda: lion_update(p, p.grad, m, 1e-4, 0.01, 0.9, 0.99)
    raise ValueError(name)


print("ready torch " + torch.__version__, flush=True)
with torch.no_grad():
    for line in sys.stdin:
        try:
            name, threads, steps = line.split()
            torch.set_num_threads(int(threads))
            key = name  # one set of tensors per optimizer, shared by every thread count
            if key not in state:
                state[key] = make(name)
                state[key]()
            step = state[key]
            t0 = time.perf_counter()
            for _ in range(int(steps)):
                step()
            print((time.perf_counter() - t0) / int(steps), flush=True)
        except Exception as e:  # reported to the Java side, which stops
            print("error " + repr(e).replace("\n", " "), flush=True)
