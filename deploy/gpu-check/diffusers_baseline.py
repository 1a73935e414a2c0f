"""The baseline beside DreamCluster's SD1.5 step in bin/gpu-check: diffusers' UNet2DConditionModel (from a source
tree of diffusers v0.27.2, which the GPU machine lacks) with torch's fused AdamW, fp32 weights under fp16 autocast
and a GradScaler (EveryDream2's setup), random weights, random latents and text states. Per batch size: one warm-up
step, then the mean of the timed steps split into compute (forward + backward) and optimizer (unscale, step, zero);
comm is 0 on one process. Peak memory: torch's max_memory_allocated and max_memory_reserved, and the device's
used memory (cudaMemGetInfo) polled every 5 ms, which is what DreamCluster's side reports.

    python3 diffusers_baseline.py --diffusers SRC [--config sd15|tiny] [--batch 1,4] [--res 512] [--steps 3] [--device cuda]

The UNet's parameter count is printed: it must equal the one DreamCluster prints for the same preset.
"""
import argparse
import contextlib
import os
import sys
import threading
import time

SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, center_input_sample=False, flip_sin_to_cos=True, freq_shift=0,
                 down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
                 up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
                 block_out_channels=[320, 640, 1280, 1280], layers_per_block=2, downsample_padding=1, mid_block_scale_factor=1,
                 act_fn="silu", norm_num_groups=32, norm_eps=1e-5, cross_attention_dim=768, attention_head_dim=8)
TINY_UNET = dict(SD15_UNET, sample_size=8, block_out_channels=[32, 64], layers_per_block=1,
                 down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"], up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
                 cross_attention_dim=32, attention_head_dim=8)


def import_unet(src):
    """diffusers from a source tree, with huggingface_hub, accelerate and peft stubbed (the model code needs none of
    them, and diffusers 0.27.2 imports names that huggingface_hub 1.x no longer has)."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import reference_support as rs  # the repository's import shims (worker/worker/src/test/python)
    rs.install_shims()
    forced = ("huggingface_hub", "accelerate", "peft", "xformers")
    for name in list(sys.modules):
        if name.split(".")[0] in forced:
            del sys.modules[name]
    sys.meta_path.insert(0, rs._StubFinder(forced))
    if os.path.isdir(os.path.join(src, "src", "diffusers")):
        src = os.path.join(src, "src")
    if not os.path.isfile(os.path.join(src, "diffusers", "__init__.py")):
        print(f"error: --diffusers: {src} is not allowed (a diffusers source tree with diffusers/__init__.py)", file=sys.stderr)
        sys.exit(2)
    sys.path.insert(0, os.path.abspath(src))
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
    return UNet2DConditionModel


class DevicePeak:
    """The device's used memory (total - free), polled every 5 ms on a thread."""

    def __init__(self, torch):
        self.torch, self.peak, self.stop = torch, 0, False
        self.t = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop:
            free, total = self.torch.cuda.mem_get_info()
            self.peak = max(self.peak, total - free)
            time.sleep(0.005)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *a):
        self.stop = True
        self.t.join()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--diffusers", required=True)
    ap.add_argument("--config", default="sd15", choices=["sd15", "tiny"])
    ap.add_argument("--batch", default="1,4")
    ap.add_argument("--res", type=int, default=512)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    a = ap.parse_args()
    if a.res % 8 or a.res < 64:
        print(f"error: --res: {a.res} is not allowed (a multiple of 8, at least 64)", file=sys.stderr)
        sys.exit(2)
    import torch
    UNet = import_unet(a.diffusers)
    cuda = a.device == "cuda"
    dev = torch.device(a.device)
    cfg = SD15_UNET if a.config == "sd15" else TINY_UNET
    torch.manual_seed(0)
    t0 = time.time()
    with (dev if cuda else contextlib.nullcontext()):  # built on the GPU directly (torch >= 2.0)
        unet = UNet(**cfg)
    unet.train()
    n_params = sum(p.numel() for p in unet.parameters())
    print(f"diffusers UNet2DConditionModel ({a.config}) {n_params} parameters, built in {time.time() - t0:.1f} s on {a.device}; "
          f"torch {torch.__version__}" + (f", {torch.cuda.get_device_name(0)}" if cuda else ""), flush=True)
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-6, weight_decay=0.01, fused=True) if cuda else \
        torch.optim.AdamW(unet.parameters(), lr=1e-6, weight_decay=0.01)
    scaler = None
    if cuda:  # torch.amp.GradScaler("cuda") since torch 2.3; torch.cuda.amp.GradScaler before
        scaler = torch.amp.GradScaler("cuda") if hasattr(getattr(torch, "amp", None), "GradScaler") else torch.cuda.amp.GradScaler()
    lat = a.res // 8
    for b in [int(x) for x in a.batch.split(",") if x]:
        x = torch.randn(b, 4, lat, lat, device=dev)
        ctx = torch.randn(b, 77, cfg["cross_attention_dim"], device=dev)
        t = torch.randint(0, 1000, (b,), device=dev)
        target = torch.randn_like(x)
        times = []
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        with (DevicePeak(torch) if cuda else contextlib.nullcontext()) as peak:
            for s in range(1 + a.steps):
                t1 = time.perf_counter()
                with (torch.autocast("cuda", dtype=torch.float16) if cuda else contextlib.nullcontext()):  # fp32 on the CPU
                    pred = unet(x, t, ctx).sample
                loss = torch.nn.functional.mse_loss(pred.float(), target)
                (scaler.scale(loss) if cuda else loss).backward()
                if cuda:
                    torch.cuda.synchronize()
                t2 = time.perf_counter()
                if cuda:
                    scaler.step(opt)
                    scaler.update()
                else:
                    opt.step()
                opt.zero_grad(set_to_none=True)
                if cuda:
                    torch.cuda.synchronize()
                t3 = time.perf_counter()
                if s > 0:
                    times.append((t2 - t1, t3 - t2))
        c = sum(t[0] for t in times) / len(times)
        o = sum(t[1] for t in times) / len(times)
        mem = ""
        if cuda:
            mem = (f" | peak allocated {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB, reserved "
                   f"{torch.cuda.max_memory_reserved() / 2**30:.2f} GiB, device used {peak.peak / 2**30:.2f} GiB")
        print(f"diffusers {a.config} {a.res}px batch {b}: step {(c + o) * 1e3:.1f} ms = compute {c * 1e3:.1f} + comm 0.0 + "
              f"optimizer {o * 1e3:.1f} ms (mean of {len(times)} after 1 warm-up), {b / (c + o):.2f} samples/s, "
              f"loss {loss.item():.5f}{mem}", flush=True)
        del x, ctx, t, target, pred, loss


if __name__ == "__main__":
    main()
