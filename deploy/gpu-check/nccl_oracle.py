"""The torch.distributed oracle of bin/gpu-check: N processes of this script form one process group and check
all-reduce, reduce-scatter and all-gather results, then time them (busbw as nccl-tests defines it). On the GPU
machine both ranks share the one GPU with NCCL_HOSTID set per process (NCCL < 2.30 refuses two ranks of one
communicator on one GPU of one host); if torch's NCCL passes here, the project's NCCL check should too.

    python3 nccl_oracle.py RANK WORLD INIT_FILE [--backend nccl|gloo] [--mib 64,256]

gloo (CPU) exists for the dry run of the launching logic; it has no reduce-scatter.
"""
import argparse
import datetime
import os
import sys
import time

import torch
import torch.distributed as dist


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rank", type=int)
    ap.add_argument("world", type=int)
    ap.add_argument("init_file")
    ap.add_argument("--backend", default="nccl", choices=["nccl", "gloo"])
    ap.add_argument("--mib", default="64,256")
    a = ap.parse_args()
    if not 0 <= a.rank < a.world:
        print(f"error: RANK: {a.rank} is not allowed (0 to WORLD-1 = {a.world - 1})", file=sys.stderr)
        sys.exit(2)
    tag = f"[torch rank {a.rank}/{a.world}]"
    nccl = a.backend == "nccl"
    dev = torch.device("cuda", 0) if nccl else torch.device("cpu")
    if nccl:
        torch.cuda.set_device(dev)
    t0 = time.time()
    dist.init_process_group(a.backend, init_method="file://" + os.path.abspath(a.init_file), rank=a.rank,
                            world_size=a.world, timeout=datetime.timedelta(seconds=120))
    version = ".".join(map(str, torch.cuda.nccl.version())) if nccl else "-"
    print(f"{tag} torch {torch.__version__} backend {a.backend} NCCL {version} NCCL_HOSTID={os.environ.get('NCCL_HOSTID')} "
          f"init {time.time() - t0:.2f} s", flush=True)
    w = a.world
    expect = w * (w + 1) / 2
    ok = True

    def all_gather(out, part):
        if nccl:
            dist.all_gather_into_tensor(out, part)
        else:  # gloo has no all_gather_into_tensor in every torch version
            dist.all_gather(list(out.chunk(w)), part)

    def sync():
        if nccl:
            torch.cuda.synchronize()

    x = torch.full((4097,), float(a.rank + 1), device=dev)
    dist.all_reduce(x)
    sync()
    good = bool((x == expect).all())
    ok &= good
    print(f"{tag} all-reduce {'correct' if good else 'WRONG: ' + str(x[:4].tolist())}", flush=True)
    block = 1024
    out = torch.empty(w * block, device=dev)
    all_gather(out, torch.full((block,), float(a.rank + 1), device=dev))
    sync()
    good = all(bool((out[r * block:(r + 1) * block] == r + 1).all()) for r in range(w))
    ok &= good
    print(f"{tag} all-gather {'correct' if good else 'WRONG'}", flush=True)
    if nccl:
        rs = torch.empty(block, device=dev)
        dist.reduce_scatter_tensor(rs, torch.full((w * block,), float(a.rank + 1), device=dev))
        sync()
        good = bool((rs == expect).all())
        ok &= good
        print(f"{tag} reduce-scatter {'correct' if good else 'WRONG'}", flush=True)
    for mib in [int(m) for m in a.mib.split(",") if m]:
        n = (mib << 20) // 4 // w * w
        buf = torch.ones(n, device=dev)
        part = torch.empty(n // w, device=dev)

        def timed(op):
            op()
            sync()
            t = time.perf_counter()
            for _ in range(5):
                op()
            sync()
            return (time.perf_counter() - t) / 5

        ar = timed(lambda: dist.all_reduce(buf))
        ag = timed(lambda: all_gather(buf, part))
        rs = timed(lambda: dist.reduce_scatter_tensor(part, buf)) if nccl else float("nan")
        gb = n * 4 / 1e9
        print(f"{tag} {mib:4d} MiB all-reduce {ar * 1e3:.3f} ms busbw {gb / ar * 2 * (w - 1) / w:.1f} GB/s | all-gather "
              f"{ag * 1e3:.3f} ms busbw {gb / ag * (w - 1) / w:.1f} | reduce-scatter {rs * 1e3:.3f} ms busbw "
              f"{gb / rs * (w - 1) / w:.1f}", flush=True)
    dist.destroy_process_group()
    print(f"{tag} {'ok' if ok else 'FAILED'}", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
