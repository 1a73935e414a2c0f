"""Shared by the reference recorders next to it (record_gradients.py, record_training.py): the import
shims that load diffusers and transformers from source checkouts without their optional dependencies,
diffusers' float64 attention detail, and safetensors reading and writing by hand (no safetensors
package: Debian's python3 with python3-torch and python3-numpy is all these scripts need).

See src/test/resources/reference/README.md for how to get the sources and run the recorders.
"""

import hashlib
import importlib.machinery
import json
import os
import struct
import sys
import types

import numpy as np


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
            sys.exit(os.path.basename(sys.argv[0]) + " needs packaging (python3-packaging or setuptools' vendored copy)")
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
    names = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}
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


# ---------------------------------------------------------------- models

def load_into(module, path, label, dtype=np.float64):
    """Loads the weight file into module (strict: every tensor used, none missing), widened or kept at
    dtype; returns how many tensors it held."""
    import torch
    tensors = read_safetensors(path)
    tensors.pop("text_model.embeddings.position_ids", None)  # a buffer older transformers saved
    want = set(module.state_dict().keys())
    have = set(tensors.keys())
    missing, unexpected = sorted(want - have), sorted(have - want)
    assert not missing and not unexpected, f"{label}: missing {missing}, unexpected {unexpected}"
    module.load_state_dict({k: torch.from_numpy(v.astype(dtype)) for k, v in tensors.items()}, strict=True)
    return len(tensors)
