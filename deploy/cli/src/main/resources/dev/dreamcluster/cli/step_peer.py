# The torch peer of `dreamcluster bench step --peer`: one rank of a training loop built from diffusers'
# UNet2DConditionModel and AutoencoderKL, transformers' CLIPTextModel (both imported from source trees
# at a release tag, given by path; nothing of theirs ships with DreamCluster) and torch.optim.AdamW, on
# the model folder and the global batches the bench hands it. It does what one DreamCluster step does:
#
#   per global batch (the same images, bucket sizes, captions after caption dropout, in the same order
#   as DreamCluster's run: the bench writes them from DreamCluster's own data cursor), this rank's slice
#   [rank * B / world, (rank + 1) * B / world): VAE encode without gradients, latent sample x scaling
#   factor; noise + zero_frequency_noise_ratio x per-channel offset noise; uniform timesteps;
#   DDPMScheduler.add_noise; the text encoder (trainable, train mode) on the token ids; the UNet;
#   EveryDream2's loss of the run's loss_type against the epsilon (or v) target; backward (with world > 1
#   under DistributedDataParallel over gloo, whose bucketed all-reduce runs inside the backward);
#   clip_grad_norm_ over every parameter of both models; one AdamW step; zero_grad(set_to_none).
#
# The step time runs from taking the batch to the end of zero_grad: "compute" up to the end of the
# backward (DDP's all-reduce included), "optimizer" the clipping, the AdamW step and zero_grad. Rank 0
# prints one JSON line per step, then {"done": ...} with the versions it ran.
#
#   python3 step_peer.py --diffusers SRC --transformers SRC --model DIR --inputs DIR --steps N
#                        [--rank R --world W --port P] [--threads T] [--profile FILE]
#   python3 step_peer.py --diffusers SRC --transformers SRC --probe     # versions only
#
# Runs with Debian's python3-torch and python3-numpy: huggingface_hub, safetensors, tokenizers and
# accelerate are replaced by inert stubs, and the weights are read by the safetensors reader below.
import argparse
import importlib.machinery
import json
import os
import struct
import sys
import time
import types

sys.dont_write_bytecode = True  # no __pycache__ in the source trees


# ---------------------------------------------------------------- import shims (stubbed optional packages)

class _StubError(Exception):
    pass


class _StubResult:
    def __bool__(self):
        return False

    def __call__(self, f):
        return f


_STUB_RESULT = _StubResult()


def _stub_function(*args, **kwargs):
    if len(args) == 1 and not kwargs and callable(args[0]):
        return args[0]
    return _STUB_RESULT


class _StubClass:
    def __init__(self, *args, **kwargs):
        pass

    def __init_subclass__(cls, **kwargs):
        pass


_STUB_CONSTANTS = {
    "HF_HUB_CACHE": "/nonexistent/hf-cache", "HUGGINGFACE_HUB_CACHE": "/nonexistent/hf-cache", "HF_HOME": "/nonexistent/hf-home",
    "HF_HUB_OFFLINE": True, "HF_HUB_DISABLE_TELEMETRY": True, "ENDPOINT": "http://localhost.invalid",
    "HUGGINGFACE_CO_URL_TEMPLATE": "http://localhost.invalid/{repo_id}/resolve/{revision}/{filename}",
    "REGEX_COMMIT_HASH": __import__("re").compile(r"^[0-9a-f]{40}$"), "SAFETENSORS_SINGLE_FILE": "model.safetensors",
    "SAFETENSORS_INDEX_FILE": "model.safetensors.index.json", "__version__": "0.0.0-stub",
}


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__") and name != "__version__":
            raise AttributeError(name)
        if name in _STUB_CONSTANTS:
            value = _STUB_CONSTANTS[name]
        elif name.endswith(("Error", "Exception", "Warning")):
            value = type(name, (_StubError,), {})
        elif name[:1].isupper():
            value = type(name, (_StubClass,), {})
        else:
            value = _stub_function
        setattr(self, name, value)
        return value


class _StubFinder:
    def __init__(self, roots):
        self.roots = set(roots)

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.roots:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        m = _StubModule(spec.name)
        m.__path__ = []
        return m

    def exec_module(self, module):
        pass


def _installed(name):
    try:
        __import__(name)
        return True
    except ImportError:
        return False


def source_root(src, pkg):
    for d in (src, os.path.join(src, "src")):
        if os.path.isfile(os.path.join(d, pkg, "__init__.py")):
            return os.path.abspath(d)
    sys.exit(f"error: {src}: no {pkg}/__init__.py (give the root of a {pkg} source tree or its src folder)")


def import_libraries(diffusers_src, transformers_src):
    if not _installed("packaging"):  # Debian's setuptools vendors the real one
        for vendored in ("setuptools._vendor.packaging", "pkg_resources._vendor.packaging"):
            try:
                pkg = __import__(vendored, fromlist=["version"])
            except ImportError:
                continue
            sys.modules["packaging"] = pkg
            for sub in ("version", "specifiers", "requirements", "markers", "utils", "tags"):
                try:
                    sys.modules["packaging." + sub] = __import__(vendored + "." + sub, fromlist=["x"])
                except ImportError:
                    pass
            break
    # huggingface_hub and accelerate are always stubbed: the model code needs neither, and an installed
    # huggingface_hub of another major version lacks names diffusers 0.27 imports
    forced = ("huggingface_hub", "accelerate", "peft", "xformers")
    roots = [r for r in ("safetensors", "tokenizers", "tqdm", "importlib_metadata") if not _installed(r)] + list(forced)
    for name in list(sys.modules):
        if name.split(".")[0] in forced:
            del sys.modules[name]
    sys.meta_path.insert(0, _StubFinder(roots))
    for pkg in ("transformers", "diffusers"):
        m = types.ModuleType(pkg + ".dependency_versions_check")
        m.dep_version_check = lambda *a, **k: None
        sys.modules[pkg + ".dependency_versions_check"] = m
    sys.path.insert(0, source_root(diffusers_src, "diffusers"))
    sys.path.insert(0, source_root(transformers_src, "transformers"))
    import diffusers
    import transformers
    from diffusers.models.autoencoders.autoencoder_kl import AutoencoderKL
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
    from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
    from transformers.models.clip.configuration_clip import CLIPTextConfig
    from transformers.models.clip.modeling_clip import CLIPTextModel
    return types.SimpleNamespace(diffusers=diffusers.__version__, transformers=transformers.__version__, AutoencoderKL=AutoencoderKL,
                                 UNet2DConditionModel=UNet2DConditionModel, DDPMScheduler=DDPMScheduler,
                                 CLIPTextConfig=CLIPTextConfig, CLIPTextModel=CLIPTextModel)


# ---------------------------------------------------------------- weights (safetensors by hand)

def read_safetensors(path):
    import numpy as np
    dtypes = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = memoryview(data)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        a = np.frombuffer(body[begin:end], dtype=np.dtype(dtypes[info["dtype"]]).newbyteorder("<"))
        out[name] = a.reshape(info["shape"]).astype(np.float32)
    return out


def load_into(module, path):
    import torch
    tensors = read_safetensors(path)
    tensors.pop("text_model.embeddings.position_ids", None)
    want, have = set(module.state_dict().keys()), set(tensors.keys())
    if want != have:
        sys.exit(f"error: {path}: missing {sorted(want - have)[:5]}, unexpected {sorted(have - want)[:5]}")
    module.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=True)


def config(model, folder, name):
    with open(os.path.join(model, folder, name)) as f:
        return json.load(f)


def blas_library():
    """The BLAS library this process loaded (Debian's libtorch takes libblas.so.3 from the alternatives system:
    OpenBLAS when libopenblas0 is installed, which libtorch1.13 recommends, else the reference libblas3)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {p for p in (line.split()[-1] for line in f) if "blas" in os.path.basename(p).lower() and ".so" in p}
    except OSError:
        return "unknown"
    return ", ".join(sorted({os.path.realpath(l) for l in libs})) or "none loaded"


# ---------------------------------------------------------------- the step

def diffusion_loss(torch, pred, target, t, loss_type, num_train_timesteps):
    """EveryDream2's loss_type (as DreamCluster's DiffusionLoss): every mean over all elements."""
    F = torch.nn.functional
    if loss_type == "mse":
        return F.mse_loss(pred, target, reduction="mean")
    huber = F.huber_loss(pred, target, reduction="none", delta=1.0)
    if loss_type == "huber":
        return huber.mean()
    mse = F.mse_loss(pred, target, reduction="none")
    b = (t.to(pred.dtype) / num_train_timesteps).view(-1, 1, 1, 1)
    if loss_type == "mse_huber":
        return (mse * b).mean() + (huber * (1.0 - b)).mean()
    if loss_type == "huber_mse":
        return (huber * b).mean() + (mse * (1.0 - b)).mean()
    sys.exit(f"error: loss_type {loss_type!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--diffusers", required=True)
    ap.add_argument("--transformers", required=True)
    ap.add_argument("--probe", action="store_true")
    ap.add_argument("--model")
    ap.add_argument("--inputs")
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--rank", type=int, default=0)
    ap.add_argument("--world", type=int, default=1)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", help="write torch.profiler's per-op table of the last step (self CPU time) to this file")
    args = ap.parse_args()

    import numpy as np
    import torch
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    libs = import_libraries(args.diffusers, args.transformers)
    versions = {"torch": torch.__version__, "diffusers": libs.diffusers, "transformers": libs.transformers,
                "threads": torch.get_num_threads(), "blas": blas_library(), "gloo": torch.distributed.is_available() and torch.distributed.is_gloo_available()}
    if args.probe:
        print(json.dumps(versions), flush=True)
        return

    with open(os.path.join(args.inputs, "batches.json")) as f:
        plan = json.load(f)
    torch.manual_seed(args.seed * 1000 + args.rank)
    unet = libs.UNet2DConditionModel.from_config(config(args.model, "unet", "config.json"))
    te = libs.CLIPTextModel(libs.CLIPTextConfig(**config(args.model, "text_encoder", "config.json")))
    vae = libs.AutoencoderKL.from_config(config(args.model, "vae", "config.json"))
    load_into(unet, os.path.join(args.model, "unet", "diffusion_pytorch_model.safetensors"))
    load_into(te, os.path.join(args.model, "text_encoder", "model.safetensors"))
    load_into(vae, os.path.join(args.model, "vae", "diffusion_pytorch_model.safetensors"))
    scheduler = libs.DDPMScheduler.from_config(config(args.model, "scheduler", "scheduler_config.json"))
    unet.train()
    te.train()
    vae.eval().requires_grad_(False)
    scaling = vae.config.scaling_factor
    epsilon = scheduler.config.prediction_type == "epsilon"
    timesteps = scheduler.config.num_train_timesteps

    class Denoiser(torch.nn.Module):
        """Both trained models as one module, so that one DDP wrapper buckets all their gradients."""

        def __init__(self):
            super().__init__()
            self.te, self.unet = te, unet

        def forward(self, ids, noisy, t):
            states = self.te(input_ids=ids).last_hidden_state
            return self.unet(noisy, t, encoder_hidden_states=states).sample

    model = Denoiser()
    if args.world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", init_method="tcp://127.0.0.1:%d" % args.port, rank=args.rank, world_size=args.world)
        model = torch.nn.parallel.DistributedDataParallel(model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=plan["lr"], weight_decay=plan["weight_decay"])  # torch's defaults otherwise
    clip = plan.get("clip_grad_norm")
    zero_frequency = plan["zero_frequency_noise_ratio"]
    batches = plan["batches"]
    profiler = None
    for step in range(args.steps):
        if args.profile and step == args.steps - 1:
            profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], record_shapes=True)
            profiler.__enter__()
        b = batches[step % len(batches)]
        n = b["count"]
        lo, hi = args.rank * n // args.world, (args.rank + 1) * n // args.world
        shape = (n, 3, b["height"], b["width"])
        pixels = np.fromfile(os.path.join(args.inputs, b["file"]), dtype="<f4").reshape(shape)[lo:hi]
        ids_all = np.asarray(b["ids"], dtype=np.int64)[lo:hi]
        t0 = time.perf_counter()
        px = torch.from_numpy(pixels)
        ids = torch.from_numpy(ids_all)
        with torch.no_grad():
            latents = vae.encode(px).latent_dist.sample() * scaling
        noise = torch.randn_like(latents)
        if zero_frequency > 0:
            noise = noise + zero_frequency * torch.randn(latents.shape[0], latents.shape[1], 1, 1)
        t = torch.randint(0, timesteps, (latents.shape[0],), dtype=torch.int64)
        noisy = scheduler.add_noise(latents, noise, t)
        target = noise if epsilon else scheduler.get_velocity(latents, noise, t)
        pred = model(ids, noisy, t)
        loss = diffusion_loss(torch, pred, target, t, plan["loss_type"], timesteps)
        loss.backward()
        t1 = time.perf_counter()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, max_norm=clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        t2 = time.perf_counter()
        if profiler is not None:
            profiler.__exit__(None, None, None)
            with open(args.profile, "w") as f:
                f.write(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=60) + "\n")
                f.write(profiler.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=60))
        if args.rank == 0:
            print(json.dumps({"step": step + 1, "step_s": t2 - t0, "compute_s": t1 - t0, "optimizer_s": t2 - t1,
                              "loss": float(loss), "shape": list(latents.shape)}), flush=True)
    if args.world > 1:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    if args.rank == 0:
        print(json.dumps(dict(versions, done=True)), flush=True)


if __name__ == "__main__":
    main()
