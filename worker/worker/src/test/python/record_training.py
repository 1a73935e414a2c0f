#!/usr/bin/python3
"""Records the reference that TorchReferenceTrainingTest compares DreamCluster's training with: 20
optimizer steps of the tiny model by a training loop of diffusers' UNet2DConditionModel and
DDPMScheduler, transformers' CLIPTextModel and torch.optim.AdamW, fed exactly the inputs DreamCluster
drew (the latents, noise, timesteps and token ids of every micro-batch, as the Java test writes them).

Runs with Debian's python3 (torch and numpy from Debian; no pip), importing diffusers and transformers
from source checkouts at release tags with the shims of reference_support.py (shared with
record_gradients.py). See src/test/resources/reference/README.md, "Training loop", for the commands.

--inputs is the folder the Java test writes (worker/worker/target/reference-inputs):
  inputs.safetensors  micro{k}.latents / .noise [B,4,h,w], micro{k}.timesteps [B], micro{k}.input_ids
                      [B,77] (all F32; ids and timesteps are exact integers) for micro-step k (optimizer
                      step k // grad_accum); metadata "settings" (JSON: steps, grad_accum,
                      clip_grad_norm, clip_skip, loss_type, min_snr_gamma, embedding_perturbation, per
                      component the AdamW hyper-parameters and the lr of every step) and "inputs_sha256".
  model/              the diffusers folder the training started from.

The loop (what an EveryDream2-style trainer does with these inputs), run twice: in float64 (weights,
inputs, optimizer state: float32 values widened) and in float32. Per optimizer step: zero the
gradients; per micro-step: noisy = DDPMScheduler.add_noise(x0, noise, t) (alphas_cumprod as diffusers
computes it, float32, cast to the run's dtype), states = text_encoder(ids).last_hidden_state,
pred = unet(noisy, t, states).sample, target = noise (epsilon) or DDPMScheduler.get_velocity(x0, noise,
t) (v_prediction), the loss of the settings' loss_type with EveryDream2's definitions (b = t / 1000 per
sample; mse: mean((pred - target)^2); huber: mean(huber_loss(pred, target, delta 1)); mse_huber, its
default: mean(mse * b + huber * (1 - b)); huber_mse: mean(mse * (1 - b) + huber * b)), backward. Then
every gradient (UNet and text encoder) divided by grad_accum; torch.nn.utils.clip_grad_norm_ over all of them together (its returned
norm, before clipping, is the step's grad_norm); one torch.optim.AdamW step per component with that
step's lr. The step's loss is the mean of its micro-batch losses.

--out gets:
  update64.unet.NAME, update64.text_encoder.NAME   float64 final weights - initial weights, stored F32
  __metadata__  inputs_sha256 (copied), loss_float64, grad_norm_float64, loss_float32,
                grad_norm_float32 (JSON arrays, one per step), float32_distance (JSON object:
                "unet/NAME" -> ||float32 final - float64 final||_2), versions, library tags and commits.
"""

import argparse
import hashlib
import json
import os
import sys
import types

import numpy as np

sys.dont_write_bytecode = True  # no __pycache__ next to the sources
from reference_support import import_models, keep_float64_when_upcasting, load_into, read_safetensors, sha256, \
    write_safetensors  # noqa: E402

# the release tags this reference was recorded with and their commits (git rev-parse TAG^{commit})
KNOWN_COMMITS = {
    ("diffusers", "0.27.2"): "b69fd990ad8026f21893499ab396d969b62bb8cc",
    ("transformers", "4.38.2"): "092f1fdaa4224fdd88c616dc9678e6fcb37bfffd",
}
COMPONENTS = ("unet", "text_encoder")
WEIGHT_FILES = {"unet": "diffusion_pytorch_model.safetensors", "text_encoder": "model.safetensors"}


def inputs_digest(tensors, micro_steps):
    """TorchReferenceTrainingTest.inputsDigest: SHA-256 over every input in recording order, each as its
    UTF-8 name then its float32 values little-endian. Recomputed here to check the file was read as the
    Java test wrote it."""
    md = hashlib.sha256()
    for k in range(micro_steps):
        for part in ("latents", "noise", "timesteps", "input_ids"):
            name = f"micro{k}.{part}"
            md.update(name.encode("utf-8"))
            md.update(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())
    return md.hexdigest()


def diffusion_loss(pred, target, t, loss_type, num_train_timesteps):
    """EveryDream2's loss_type, every mean over all elements (no per-image loss_scale, no min-SNR). Its
    code casts pred, target and b to float32; here they stay in the run's dtype."""
    import torch
    F = torch.nn.functional
    if loss_type == "mse":
        return F.mse_loss(pred, target, reduction="mean")
    huber = F.huber_loss(pred, target, reduction="none", delta=1.0)
    if loss_type == "huber":
        return huber.mean()
    mse = F.mse_loss(pred, target, reduction="none")
    b = (t.to(pred.dtype) / num_train_timesteps).view(-1, 1, 1, 1).expand_as(mse)  # early_timestep_bias
    if loss_type == "mse_huber":
        return (mse * b + huber * (1.0 - b)).mean()
    if loss_type == "huber_mse":
        return (mse * (1.0 - b) + huber * b).mean()
    raise ValueError(f"loss_type {loss_type!r}")


def as_int64(a, what):
    i = a.astype(np.int64)
    assert np.array_equal(i.astype(np.float32), a), f"{what}: not whole numbers"
    return i


def load_models(libs, model_dir, dtype):
    import torch
    with open(os.path.join(model_dir, "unet", "config.json")) as f:
        unet_cfg = json.load(f)
    with open(os.path.join(model_dir, "text_encoder", "config.json")) as f:
        te_cfg = json.load(f)
    unet = libs.UNet2DConditionModel.from_config(unet_cfg).to(dtype)
    te = libs.CLIPTextModel(libs.CLIPTextConfig(**te_cfg)).to(dtype)
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    load_into(unet, os.path.join(model_dir, "unet", WEIGHT_FILES["unet"]), "unet", np_dtype)
    load_into(te, os.path.join(model_dir, "text_encoder", WEIGHT_FILES["text_encoder"]), "text_encoder", np_dtype)
    # train mode, as a trainer has it (both have dropout 0: the same as eval here)
    unet.train()
    te.train()
    return {"unet": unet, "text_encoder": te}


def train(libs, model_dir, tensors, settings, dtype):
    """The training loop in dtype; returns (per-step losses, per-step grad norms, final weights as numpy
    float64 arrays keyed (component, name), names of parameters that never got a gradient)."""
    import torch
    steps, ga, clip = settings["steps"], settings["grad_accum"], settings["clip_grad_norm"]
    models = load_models(libs, model_dir, dtype)
    scheduler = libs.scheduler
    prediction = scheduler.config.prediction_type
    assert prediction in ("epsilon", "v_prediction"), prediction
    params = {c: [p for _, p in models[c].named_parameters()] for c in COMPONENTS}
    every = params["unet"] + params["text_encoder"]
    optimizers = {}
    for c in COMPONENTS:
        s = settings[c]
        assert s["optimizer"].lower() == "adamw", f"{c}: optimizer {s['optimizer']}, only AdamW is recorded here"
        optimizers[c] = torch.optim.AdamW(params[c], lr=s["lr"][0], betas=(s["beta1"], s["beta2"]), eps=s["eps"],
                                          weight_decay=s["weight_decay"], amsgrad=False, foreach=False)
    losses, norms = [], []
    no_grad = set()
    for step in range(steps):
        for opt in optimizers.values():
            opt.zero_grad(set_to_none=True)
        micro_losses = []
        for m in range(ga):
            k = step * ga + m
            x0 = torch.from_numpy(tensors[f"micro{k}.latents"]).to(dtype)
            noise = torch.from_numpy(tensors[f"micro{k}.noise"]).to(dtype)
            t = torch.from_numpy(as_int64(tensors[f"micro{k}.timesteps"], f"micro{k}.timesteps"))
            ids = torch.from_numpy(as_int64(tensors[f"micro{k}.input_ids"], f"micro{k}.input_ids"))
            noisy = scheduler.add_noise(x0, noise, t)
            target = noise if prediction == "epsilon" else scheduler.get_velocity(x0, noise, t)
            states = models["text_encoder"](input_ids=ids).last_hidden_state
            pred = models["unet"](noisy, t, encoder_hidden_states=states).sample
            loss = diffusion_loss(pred, target, t, settings["loss_type"], scheduler.config.num_train_timesteps)
            loss.backward()
            micro_losses.append(float(loss))
        for c in COMPONENTS:
            for name, p in models[c].named_parameters():
                if p.grad is None:  # never reached by the loss: a zero gradient (AdamW would skip it, decay too)
                    no_grad.add(f"{c}/{name}")
                    p.grad = torch.zeros_like(p)
        with torch.no_grad():
            for p in every:
                p.grad.div_(ga)
        # the global L2 norm over both components, before clipping; clipping scales by
        # clip / (norm + 1e-6) when that is below 1 (max_norm inf: the norm only)
        norm = torch.nn.utils.clip_grad_norm_(every, max_norm=clip if clip is not None else float("inf"), norm_type=2.0)
        for c in COMPONENTS:
            for group in optimizers[c].param_groups:
                group["lr"] = settings[c]["lr"][step]
            optimizers[c].step()
        losses.append(sum(micro_losses) / ga)
        norms.append(float(norm))
        print(f"  {str(dtype).replace('torch.', '')} step {step + 1:2d}: loss {losses[-1]!r}, grad_norm {norms[-1]!r}")
    final = {(c, name): p.detach().numpy().astype(np.float64) for c in COMPONENTS for name, p in models[c].named_parameters()}
    return losses, norms, final, sorted(no_grad)


def library_tag(module, name):
    version = module.__version__
    commit = KNOWN_COMMITS.get((name, version))
    return "v" + version, commit or "unknown (not one of the tags this script knows)"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--diffusers", required=True, help="diffusers source checkout (root or its src/) at v0.27.2")
    ap.add_argument("--transformers", required=True, help="transformers source checkout (root or its src/) at v4.38.2")
    ap.add_argument("--inputs", required=True, help="the folder TorchReferenceTrainingTest writes (inputs.safetensors, model/)")
    ap.add_argument("--out", required=True, help="the reference file to write (tiny-20-steps.safetensors)")
    args = ap.parse_args()

    import torch
    torch.manual_seed(0)
    torch.set_num_threads(1)  # one summation order on every machine: the output is byte-for-byte reproducible
    torch.use_deterministic_algorithms(True)
    diffusers, transformers, UNet2DConditionModel, Attention, CLIPTextConfig, CLIPTextModel = import_models(
        args.diffusers, args.transformers)
    from diffusers.schedulers.scheduling_ddpm import DDPMScheduler
    keep_float64_when_upcasting(Attention)

    inputs_path = os.path.join(args.inputs, "inputs.safetensors")
    model_dir = os.path.join(args.inputs, "model")
    tensors = read_safetensors(inputs_path)
    meta_in = read_metadata(inputs_path)
    settings = json.loads(meta_in["settings"])
    steps, ga = settings["steps"], settings["grad_accum"]
    assert settings.get("clip_skip", 0) == 0, "clip_skip > 0 is not recorded by this script"
    assert "loss_type" in settings, f"{inputs_path}: no loss_type in its settings (written by an older test: re-run it)"
    assert settings["loss_type"] in ("mse", "huber", "mse_huber", "huber_mse"), settings["loss_type"]
    assert settings.get("min_snr_gamma") is None, "min_snr_gamma is not recorded by this script"
    assert not settings.get("embedding_perturbation"), "embedding_perturbation is not recorded by this script"
    assert len(tensors) == 4 * steps * ga, f"{len(tensors)} tensors for {steps} steps x grad_accum {ga}"
    digest = inputs_digest(tensors, steps * ga)
    assert digest == meta_in["inputs_sha256"], f"inputs digest {digest} != recorded {meta_in['inputs_sha256']}"

    with open(os.path.join(model_dir, "scheduler", "scheduler_config.json")) as f:
        sched_cfg = json.load(f)
    libs = types.SimpleNamespace(UNet2DConditionModel=UNet2DConditionModel, CLIPTextConfig=CLIPTextConfig,
                                 CLIPTextModel=CLIPTextModel, scheduler=DDPMScheduler.from_config(sched_cfg))
    print(f"{inputs_path}: {steps} steps x grad_accum {ga}, latents {list(tensors['micro0.latents'].shape)}, "
          f"DDPMScheduler {libs.scheduler.config.beta_schedule} {libs.scheduler.config.prediction_type}, "
          f"loss_type {settings['loss_type']}")

    init = {}
    for c in COMPONENTS:
        for name, a in read_safetensors(os.path.join(model_dir, c, WEIGHT_FILES[c])).items():
            init[(c, name)] = a.astype(np.float64)

    runs = {}
    for label, dtype in (("float64", torch.float64), ("float32", torch.float32)):
        # transformers builds CLIP's causal mask with torch.full(..., finfo(dtype).min) and no dtype:
        # float64 needs float64 as torch's default dtype (record_gradients.py does the same)
        saved = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            runs[label] = train(libs, model_dir, tensors, settings, dtype)
        finally:
            torch.set_default_dtype(saved)
        if runs[label][3]:
            print(f"  {label}: no gradient for {runs[label][3]}")

    final64, final32 = runs["float64"][2], runs["float32"][2]
    assert set(final64) == set(init), "the trained parameters are not the tensors of the weight files"
    out_tensors = {}
    distance = {}
    rel = []
    for (c, name) in sorted(final64, key=lambda key: (COMPONENTS.index(key[0]), key[1])):
        update = final64[(c, name)] - init[(c, name)]
        out_tensors[f"update64.{c}.{name}"] = update.astype(np.float32)
        d = float(np.sqrt(np.sum((final32[(c, name)] - final64[(c, name)]) ** 2)))
        distance[f"{c}/{name}"] = d
        u = float(np.sqrt(np.sum(update ** 2)))
        rel.append((d / u if u > 0 else float("inf"), f"{c}/{name}"))
    rel.sort()
    d_tag, d_commit = library_tag(diffusers, "diffusers")
    t_tag, t_commit = library_tag(transformers, "transformers")
    metadata = {
        "recorded_by": "worker/worker/src/test/python/record_training.py",
        "inputs_sha256": meta_in["inputs_sha256"],
        "settings": meta_in["settings"],
        "loss_float64": json.dumps(runs["float64"][0]),
        "grad_norm_float64": json.dumps(runs["float64"][1]),
        "loss_float32": json.dumps(runs["float32"][0]),
        "grad_norm_float32": json.dumps(runs["float32"][1]),
        "float32_distance": json.dumps(distance, separators=(",", ":")),
        "update64": "float64 final weights - initial weights, stored float32",
        "scheduler": f"DDPMScheduler {json.dumps(sched_cfg, sort_keys=True, separators=(',', ':'))}",
        "unet_weights_sha256": sha256(os.path.join(model_dir, "unet", WEIGHT_FILES["unet"])),
        "text_encoder_weights_sha256": sha256(os.path.join(model_dir, "text_encoder", WEIGHT_FILES["text_encoder"])),
        "torch": torch.__version__, "numpy": np.__version__, "python": sys.version.split()[0],
        "diffusers": d_tag, "diffusers_commit": d_commit, "transformers": t_tag, "transformers_commit": t_commit,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_safetensors(args.out, out_tensors, metadata)
    for label in ("float64", "float32"):
        print(f"{label}: loss {runs[label][0][0]:.6f} -> {runs[label][0][-1]:.6f}, "
              f"grad_norm {runs[label][1][0]:.6f} -> {runs[label][1][-1]:.6f}")
    worst_loss = max(abs(a - b) / abs(b) for a, b in zip(runs["float32"][0], runs["float64"][0]))
    worst_norm = max(abs(a - b) / abs(b) for a, b in zip(runs["float32"][1], runs["float64"][1]))
    print(f"float32 vs float64 run: worst per-step loss {worst_loss:.2e}, grad_norm {worst_norm:.2e} relative; "
          f"final weights ||w32 - w64|| / ||update64|| from {rel[0][0]:.2e} ({rel[0][1]}) to {rel[-1][0]:.2e} ({rel[-1][1]}), "
          f"median {rel[len(rel) // 2][0]:.2e}")
    print(f"{args.out}: {len(out_tensors)} tensors, {os.path.getsize(args.out)} bytes")


def read_metadata(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n)).get("__metadata__", {})


if __name__ == "__main__":
    main()
