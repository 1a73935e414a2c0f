# The gloo peer of `dreamcluster bench collective --peer`: one rank of torch.distributed's gloo backend
# timing all_reduce and all_gather the way the ring bench times its operations (two warm-ups, then the
# mean of ITERS, each after a barrier). Rank 0 prints one JSON line of seconds per operation.
# Arguments: RANK WORLD PORT FLOATS ITERS. gloo in torch 1.13 has no reduce_scatter.
import json
import sys
import time

import torch
import torch.distributed as dist

rank, world, port, floats, iters = (int(a) for a in sys.argv[1:6])
torch.set_num_threads(1)
dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % port, rank=rank, world_size=world)
whole = torch.ones(floats)
segment = floats // world
mine = torch.ones(segment)
parts = [torch.empty(segment) for _ in range(world)]


def seconds(op):
    op()
    op()
    total = 0.0
    for _ in range(iters):
        dist.barrier()
        t0 = time.perf_counter()
        op()
        total += time.perf_counter() - t0
    return total / iters


result = {"all_reduce": seconds(lambda: dist.all_reduce(whole)), "all_gather": seconds(lambda: dist.all_gather(parts, mine))}
dist.barrier()
if rank == 0:
    print(json.dumps(result), flush=True)
dist.destroy_process_group()
