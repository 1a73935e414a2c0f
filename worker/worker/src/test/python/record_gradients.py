#!/usr/bin/python3
"""Records float64 parameter gradients of diffusers' UNet2DConditionModel and transformers'
CLIPTextModel for the model folders that ReferenceModels.java writes, as the reference that
GradientParityTest compares DreamCluster's float32 gradients with.

Runs with Debian's python3 (torch and numpy from Debian; no pip). diffusers and transformers are
not installed: they are imported from source checkouts at release tags whose paths are given on the
command line (see src/test/resources/reference/README.md, "Parameter gradients", for how to get them
and the exact commands). The optional dependencies those packages import (huggingface_hub,
safetensors, tokenizers, accelerate, tqdm, ...) are replaced by inert stub modules below, so that
only the model classes load; none of their code runs in the computation.

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
import hashlib
import importlib.machinery
import json
import os
import struct
import sys
import types

import numpy as np

SEED = 20240601
UNET_TIMESTEPS = [17, 803]


# ---------------------------------------------------------------- import shims

class _StubError(Exception):
    """Every exception class a stubbed package would export."""


def _stub_function(*args, **kwargs):
    """A stubbed function: as a decorator it returns the function unchanged, else it does nothing
    and returns a falsy result that is itself a no-op decorator (the packages call a few stubbed
    functions at import time: huggingface_hub's are_progress_bars_disabled(), _deprecate_method(...))."""
    if len(args) == 1 and not kwargs and callable(args[0]):
        return args[0]
    return _STUB_RESULT


class _StubResult:
    def __bool__(self):
        return False

    def __call__(self, f):
        return f


_STUB_RESULT = _StubResult()


class _StubClass:
    """A stubbed class: can be subclassed and mixed in, never does anything."""

    def __init__(self, *args, **kwargs):
        pass

    def __init_subclass__(cls, **kwargs):
        pass


# values the packages read from stubbed modules at import time
_STUB_CONSTANTS = {
    "HF_HUB_CACHE": "/nonexistent/hf-cache",
    "HUGGINGFACE_HUB_CACHE": "/nonexistent/hf-cache",
    "HF_HOME": "/nonexistent/hf-home",
    "HF_HUB_OFFLINE": True,
    "HF_HUB_DISABLE_TELEMETRY": True,
    "ENDPOINT": "http://localhost.invalid",
    "HUGGINGFACE_CO_URL_TEMPLATE": "http://localhost.invalid/{repo_id}/resolve/{revision}/{filename}",
    "REGEX_COMMIT_HASH": __import__("re").compile(r"^[0-9a-f]{40}$"),
    "SAFETENSORS_SINGLE_FILE": "model.safetensors",
    "SAFETENSORS_INDEX_FILE": "model.safetensors.index.json",
    "__version__": "0.0.0-stub",
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
    """Meta path finder: every module under a stubbed root is an empty _StubModule package."""

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


def install_shims():
    # packaging (version comparisons): Debian's setuptools vendors the real one
    if not _installed("packaging"):
        for vendored in ("setuptools._vendor.packaging", "pkg_resources._vendor.packaging"):
            try:
                pkg = __import__(vendored, fromlist=["version", "specifiers", "requirements"])
            except ImportError:
                continue
            sys.modules["packaging"] = pkg
            for sub in ("version", "specifiers", "requirements", "markers", "utils", "tags"):
                try:
                    sys.modules["packaging." + sub] = __import__(vendored + "." + sub, fromlist=["x"])
                except ImportError:
                    pass
            break
        else:
            sys.exit("record_gradients.py needs packaging (python3-packaging or setuptools' vendored copy)")
    # optional dependencies: absent as far as importlib.metadata knows, present as inert stubs
    roots = [r for r in ("huggingface_hub", "safetensors", "tokenizers", "accelerate", "tqdm", "importlib_metadata",
                         "peft", "xformers") if not _installed(r)]
    sys.meta_path.insert(0, _StubFinder(roots))
    # transformers' and diffusers' import-time version checks of those dependencies
    for pkg in ("transformers", "diffusers"):
        m = types.ModuleType(pkg + ".dependency_versions_check")
        m.dep_version_check = lambda *a, **k: None
        sys.modules[pkg + ".dependency_versions_check"] = m


def import_models(diffusers_src, transformers_src):
    install_shims()
    for src, pkg in ((diffusers_src, "diffusers"), (transformers_src, "transformers")):
        if os.path.isdir(os.path.join(src, "src", pkg)):
            src = os.path.join(src, "src")
        if not os.path.isfile(os.path.join(src, pkg, "__init__.py")):
            sys.exit(f"{src}: no {pkg}/__init__.py (give the checkout's root or its src folder)")
        sys.path.insert(0, os.path.abspath(src))
    import diffusers
    import transformers
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel
    from diffusers.models.attention_processor import Attention
    from transformers.models.clip.configuration_clip import CLIPTextConfig
    from transformers.models.clip.modeling_clip import CLIPTextModel
    return diffusers, transformers, UNet2DConditionModel, Attention, CLIPTextConfig, CLIPTextModel


def keep_float64_when_upcasting(attention_cls):
    """diffusers' upcast_attention computes q k^T after query.float(): "at least float32" for fp16,
    but for float64 it would round the scores to float32. Here the upcast is skipped for float64
    inputs (where it has nothing to upcast), so the whole reference stays float64."""
    original = attention_cls.get_attention_scores

    def get_attention_scores(self, query, key, attention_mask=None):
        import torch
        if query.dtype == torch.float64 and (self.upcast_attention or self.upcast_softmax):
            saved = (self.upcast_attention, self.upcast_softmax)
            self.upcast_attention, self.upcast_softmax = False, False
            try:
                return original(self, query, key, attention_mask)
            finally:
                self.upcast_attention, self.upcast_softmax = saved
        return original(self, query, key, attention_mask)

    attention_cls.get_attention_scores = get_attention_scores


# ---------------------------------------------------------------- safetensors by hand

_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: {name} has dtype {info['dtype']}, not supported here")
        begin, end = info["data_offsets"]
        a = np.frombuffer(body[begin:end], dtype=np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<"))
        out[name] = a.reshape(info["shape"]).copy()
    return out


def write_safetensors(path, tensors, metadata):
    names = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}
    header = {"__metadata__": metadata}
    chunks = []
    offset = 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": names[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)
    os.replace(tmp, path)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ---------------------------------------------------------------- the recordings

def load_into(module, path, label):
    import torch
    tensors = read_safetensors(path)
    tensors.pop("text_model.embeddings.position_ids", None)  # a buffer older transformers saved
    want = set(module.state_dict().keys())
    have = set(tensors.keys())
    missing, unexpected = sorted(want - have), sorted(have - want)
    assert not missing and not unexpected, f"{label}: missing {missing}, unexpected {unexpected}"
    module.load_state_dict({k: torch.from_numpy(v.astype(np.float64)) for k, v in tensors.items()}, strict=True)
    return len(tensors)


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
