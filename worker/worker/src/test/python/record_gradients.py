#!/usr/bin/python3
"""Records float64 parameter gradients of diffusers' UNet2DConditionModel and transformers'
CLIPTextModel for the model folders that ReferenceModels.java writes, as the reference that
GradientParityTest compares DreamCluster's float32 gradients with.

Runs with Debian's python3 (torch and numpy from Debian; no pip). diffusers and transformers are
not installed: they are imported from source checkouts at release tags whose paths are given on the
command line (see src/test/resources/reference/README.md, "Parameter gradients", for how to get them
and the exact commands). The optional dependencies those packages import (huggingface_hub,
safetensors, tokenizers, accelerate, tqdm, ...) are replaced by inert stub modules (reference_support.py,
shared with record_training.py), so that only the model classes load; none of their code runs in the
computation.

For each model folder NAME=DIR it writes, under --out:

  NAME_unet.safetensors          inputs input.sample [2,4,16,16] f32, input.timesteps [2] i64,
                                 input.encoder_hidden_states [2,77,cross] f32, input.target f32, and
                                 the gradient (f32, rounded from f64) of
                                   loss = mean((unet(sample, t, c).sample - target)^2)
                                 for every parameter, keyed by its diffusers name.
  NAME_text_encoder.safetensors  inputs input.input_ids [2,77] i64, input.R, input.R2 [2,77,hidden]
                                 f32, the gradient of loss = sum(last_hidden_state * R) keyed by the
                                 transformers name, and of the clip_skip 2 loss
                                   sum(final_layer_norm(hidden_states[-2]) * R2)
                                 keyed "clip_skip_2/" + name.

__metadata__ holds the SHA-256 of the weight file and config.json used, the torch / diffusers /
transformers versions and the loss(es) in float64.
"""

import argparse
import json
import os
import sys

import numpy as np

# shared with record_training.py: the import shims, safetensors by hand
sys.dont_write_bytecode = True  # no __pycache__ next to the sources
from reference_support import import_models, keep_float64_when_upcasting, load_into, sha256, write_safetensors  # noqa: E402

SEED = 20240601
UNET_TIMESTEPS = [17, 803]


# ---------------------------------------------------------------- the recordings

def gradients(module):
    import torch
    out = {}
    for name, p in module.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        out[name] = g.detach().numpy().astype(np.float32)
        p.grad = None
    return out


def norm(grads):
    return float(np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values())))


def record_unet(name, folder, out_dir, meta, libs):
    import torch
    UNet2DConditionModel = libs["UNet2DConditionModel"]
    cfg_path = os.path.join(folder, "unet", "config.json")
    weights = os.path.join(folder, "unet", "diffusion_pytorch_model.safetensors")
    with open(cfg_path) as f:
        cfg = json.load(f)
    unet = UNet2DConditionModel.from_config(cfg).double().eval()
    n = load_into(unet, weights, f"{name} unet")
    rs = np.random.RandomState(SEED)
    x = rs.standard_normal((2, 4, 16, 16)).astype(np.float32)
    c = rs.standard_normal((2, 77, cfg["cross_attention_dim"])).astype(np.float32)
    target = rs.standard_normal((2, 4, 16, 16)).astype(np.float32)
    t = np.array(UNET_TIMESTEPS, dtype=np.int64)
    pred = unet(torch.from_numpy(x).double(), torch.from_numpy(t), encoder_hidden_states=torch.from_numpy(c).double()).sample
    loss = ((pred - torch.from_numpy(target).double()) ** 2).mean()
    loss.backward()
    grads = gradients(unet)
    tensors = {"input.sample": x, "input.timesteps": t, "input.encoder_hidden_states": c, "input.target": target}
    tensors.update(grads)
    metadata = dict(meta)
    metadata.update({"model": name, "component": "unet", "weights_sha256": sha256(weights), "config_sha256": sha256(cfg_path),
                     "upcast_attention": str(bool(cfg.get("upcast_attention", False))).lower()
                     + (" (its float32 rounding of q and k skipped in float64: keep_float64_when_upcasting)"
                        if cfg.get("upcast_attention") else ""),
                     "loss": repr(float(loss)), "loss_formula": "mean((unet(sample, timesteps, encoder_hidden_states).sample - target)^2)",
                     "tensors": str(n)})
    path = os.path.join(out_dir, f"{name}_unet.safetensors")
    write_safetensors(path, tensors, metadata)
    print(f"{path}: {n} parameters, loss {float(loss)!r}, ||grad|| {norm(grads):.6g}")


def record_text_encoder(name, folder, out_dir, meta, libs):
    import torch
    CLIPTextConfig, CLIPTextModel = libs["CLIPTextConfig"], libs["CLIPTextModel"]
    cfg_path = os.path.join(folder, "text_encoder", "config.json")
    weights = os.path.join(folder, "text_encoder", "model.safetensors")
    with open(cfg_path) as f:
        cfg = json.load(f)
    te = CLIPTextModel(CLIPTextConfig(**cfg)).double().eval()
    n = load_into(te, weights, f"{name} text_encoder")
    hidden = cfg["hidden_size"]
    # bos, a caption's ids, eos, then padding: eos again (SD1) or "!" = id 0 (SD2 tokenizers)
    bos, eos = 1022, 1023
    pad = 0 if cfg["hidden_act"] == "gelu" else eos
    rows = [[bos, 320, 551, 596, 516, 320, 558, 650, 552, eos], [bos, 688, 70, 550, 68, 333, eos]]
    ids = np.array([r + [pad] * (77 - len(r)) for r in rows], dtype=np.int64)
    rs = np.random.RandomState(SEED + 1)
    r1 = rs.standard_normal((2, 77, hidden)).astype(np.float32)
    r2 = rs.standard_normal((2, 77, hidden)).astype(np.float32)
    # transformers builds the causal mask with torch.full(..., torch.finfo(float64).min) and no dtype,
    # which needs float64 as torch's default dtype (else: "cannot be converted to type float")
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        out = te(input_ids=torch.from_numpy(ids))
        loss = (out.last_hidden_state * torch.from_numpy(r1).double()).sum()
        loss.backward()
        grads = gradients(te)
        out = te(input_ids=torch.from_numpy(ids), output_hidden_states=True)
        skip2 = te.text_model.final_layer_norm(out.hidden_states[-2])
        loss2 = (skip2 * torch.from_numpy(r2).double()).sum()
        loss2.backward()
        grads2 = gradients(te)
    finally:
        torch.set_default_dtype(default_dtype)
    tensors = {"input.input_ids": ids, "input.R": r1, "input.R2": r2}
    tensors.update(grads)
    tensors.update({"clip_skip_2/" + k: v for k, v in grads2.items()})
    metadata = dict(meta)
    metadata.update({"model": name, "component": "text_encoder", "weights_sha256": sha256(weights),
                     "config_sha256": sha256(cfg_path), "loss": repr(float(loss)),
                     "loss_formula": "sum(last_hidden_state * R)", "loss_clip_skip_2": repr(float(loss2)),
                     "loss_clip_skip_2_formula": "sum(final_layer_norm(hidden_states[-2]) * R2)", "tensors": str(n)})
    path = os.path.join(out_dir, f"{name}_text_encoder.safetensors")
    write_safetensors(path, tensors, metadata)
    print(f"{path}: {n} parameters, loss {float(loss)!r} (||grad|| {norm(grads):.6g}), "
          f"clip_skip 2 loss {float(loss2)!r} (||grad|| {norm(grads2):.6g})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--diffusers", required=True, help="diffusers source checkout (root or its src/) at v0.27.2")
    ap.add_argument("--transformers", required=True, help="transformers source checkout (root or its src/) at v4.38.2")
    ap.add_argument("--out", required=True, help="folder for NAME_unet.safetensors and NAME_text_encoder.safetensors")
    ap.add_argument("models", nargs="+", metavar="NAME=DIR", help="a diffusers model folder written by ReferenceModels")
    args = ap.parse_args()

    import torch
    torch.manual_seed(0)
    diffusers, transformers, UNet2DConditionModel, Attention, CLIPTextConfig, CLIPTextModel = import_models(
        args.diffusers, args.transformers)
    keep_float64_when_upcasting(Attention)
    libs = {"UNet2DConditionModel": UNet2DConditionModel, "CLIPTextConfig": CLIPTextConfig, "CLIPTextModel": CLIPTextModel}
    meta = {"recorded_by": "worker/worker/src/test/python/record_gradients.py", "torch": torch.__version__,
            "numpy": np.__version__, "python": sys.version.split()[0], "diffusers": "v" + diffusers.__version__,
            "transformers": "v" + transformers.__version__, "compute_dtype": "float64", "stored_dtype": "float32",
            "numpy_seed": str(SEED)}
    os.makedirs(args.out, exist_ok=True)
    for spec in args.models:
        name, _, folder = spec.partition("=")
        if not folder:
            ap.error(f"{spec}: expected NAME=DIR")
        record_unet(name, folder, args.out, meta, libs)
        record_text_encoder(name, folder, args.out, meta, libs)


if __name__ == "__main__":
    main()
