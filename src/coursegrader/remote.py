"""Data, not objects, between the judge and a student's kernel: the codec both sides use, and the kernel's end.

The judge (`coursegrader.judge`, in the trusted grading process) runs the test cells and reaches the
student's functions, which live in the kernel, only through requests and replies made of JSON: None, bool,
int, float, str, lists, tuples, dicts, tensors as {dtype, shape, base64 bytes, requires_grad}, generator
states, and integer handles for every other object (it stays in the kernel). Nothing is ever pickled.

`decode` is strict (a dtype allowlist, byte counts that match the shape, a size cap): whatever the kernel
sends back can only be values, which the judge's own assertions then check. It is linear in the size of the
message: dict keys are strings (hashed with the process's random seed) or small integers (distinct hashes), so no
reply can be built of colliding keys, and it stops at the cell's deadline.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import random
import time
import types
from typing import Any

import torch

MAX_BYTES = 64 * 2**20  # the most tensor data one message may carry
MAX_ITEMS = 1_000_000  # the most list items, dict entries and tensors one message may carry
MAX_KEY = 2**31  # an integer dict key lies in (-MAX_KEY, MAX_KEY): such ints hash to themselves, never alike
DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16, torch.int8,
    torch.uint8, torch.bool)}


class ProtocolError(ValueError):
    """A message that is not what the protocol allows."""


def _tensor_bytes(t: torch.Tensor) -> bytes:
    flat = torch.Tensor.detach(t).cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b""


def encode(value: Any, keep=None, budget: list[int] | None = None) -> Any:
    """`value` as JSON data; objects that are no data go to `keep` (a callable returning a handle)."""
    budget = budget if budget is not None else [MAX_ITEMS]
    budget[0] -= 1
    if budget[0] < 0:
        raise ProtocolError("too many items in one message")
    if value is None or isinstance(value, (bool, str)) or type(value) in (int, float):
        return value
    if isinstance(value, torch.Tensor):
        out = {"dtype": str(value.dtype).removeprefix("torch."), "shape": list(value.shape),
               "data": base64.b64encode(_tensor_bytes(value)).decode(), "requires_grad": bool(value.requires_grad)}
        grad = value.grad if value.is_leaf else None
        if isinstance(grad, torch.Tensor):
            out["grad"] = encode(grad, keep, budget)
        return {"__tensor__": out}
    if isinstance(value, torch.Generator):
        return {"__generator__": base64.b64encode(_tensor_bytes(value.get_state())).decode()}
    if isinstance(value, random.Random):
        version, state, gauss = value.getstate()
        return {"__random__": [version, list(state), gauss]}
    if type(value) is tuple:
        return {"__tuple__": [encode(v, keep, budget) for v in value]}
    if type(value) is list:
        return [encode(v, keep, budget) for v in value]
    if type(value) is dict:
        return {"__dict__": [[encode(k, keep, budget), encode(v, keep, budget)] for k, v in value.items()]}
    if dataclasses.is_dataclass(value) and type(value).__module__ == "bertlab.config":
        return {"__config__": encode({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, keep, budget)}
    if isinstance(value, types.GeneratorType):  # named_parameters() and the like: their items are the data
        return [encode(v, keep, budget) for v in value]
    if keep is None:
        raise ProtocolError(f"{type(value).__name__} is not data")
    return {"__handle__": keep(value)}


def decode(value: Any, resolve=None, budget: list | None = None, deadline: float = float("inf")) -> Any:
    """The value that `encode` made, checked strictly; handles become `resolve(handle)`. Past `deadline`
    (time.monotonic) it raises TimeoutError: decoding counts against the time limit of the cell that asked."""
    budget = budget if budget is not None else [MAX_ITEMS, MAX_BYTES, deadline]
    budget[0] -= 1
    if budget[0] < 0:
        raise ProtocolError("too many items in one message")
    if budget[0] % 4096 == 0 and time.monotonic() > budget[2]:
        raise TimeoutError("the test cell ran past its time limit while reading the notebook's reply")
    if value is None or isinstance(value, (bool, str)) or type(value) in (int, float):
        return value
    if type(value) is list:
        return [decode(v, resolve, budget) for v in value]
    if type(value) is not dict or len(value) != 1:
        raise ProtocolError(f"unexpected {type(value).__name__} in a message")
    (tag, body), = value.items()
    if tag == "__tensor__":
        return _decode_tensor(body, resolve, budget)
    if tag == "__tuple__" and type(body) is list:
        return tuple(decode(v, resolve, budget) for v in body)
    if tag == "__dict__" and type(body) is list:
        out = {}
        for pair in body:
            if type(pair) is not list or len(pair) != 2:
                raise ProtocolError("a dict entry is not a pair")
            key = pair[0]
            if not (key is None or type(key) in (str, bool) or (type(key) is int and -MAX_KEY < key < MAX_KEY)):
                raise ProtocolError("a dict key must be a string or an integer of at most 31 bits")
            out[key] = decode(pair[1], resolve, budget)
        return out
    if tag == "__generator__" and isinstance(body, str):
        generator = torch.Generator()
        generator.set_state(torch.frombuffer(bytearray(_b64(body, budget)), dtype=torch.uint8).clone())
        return generator
    if tag == "__random__" and type(body) is list and len(body) == 3 and type(body[1]) is list and len(body[1]) < 700:
        rng = random.Random()
        rng.setstate((body[0], tuple(int(x) for x in body[1]), body[2]))
        return rng
    if tag == "__config__":
        from bertlab.config import BertConfig

        return BertConfig(**decode(body, resolve, budget))
    if tag == "__handle__" and type(body) is int and resolve is not None:
        return resolve(body)
    raise ProtocolError(f"unexpected tag {tag!r} in a message")


def _b64(text: str, budget: list[int]) -> bytes:
    if len(text) > (budget[1] * 4) // 3 + 4:
        raise ProtocolError("a message carries more tensor data than allowed")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ProtocolError(f"bad base64: {e}") from None
    budget[1] -= len(raw)
    if budget[1] < 0:
        raise ProtocolError("a message carries more tensor data than allowed")
    return raw


def _decode_tensor(body: Any, resolve, budget: list[int]) -> torch.Tensor:
    if type(body) is not dict or not {"dtype", "shape", "data", "requires_grad"} <= set(body) <= {
            "dtype", "shape", "data", "requires_grad", "grad"}:
        raise ProtocolError("a tensor needs exactly dtype, shape, data and requires_grad")
    dtype = DTYPES.get(body["dtype"]) if isinstance(body["dtype"], str) else None
    shape = body["shape"]
    if dtype is None:
        raise ProtocolError(f"dtype {body['dtype']!r} is not allowed")
    if type(shape) is not list or len(shape) > 16 or not all(type(n) is int and 0 <= n for n in shape):
        raise ProtocolError("a tensor's shape must be a list of at most 16 sizes")
    numel = 1
    for n in shape:
        numel *= n
    itemsize = torch.empty((), dtype=dtype).element_size()
    if numel * itemsize > MAX_BYTES:
        raise ProtocolError("a tensor is larger than allowed")
    raw = _b64(body["data"], budget) if isinstance(body["data"], str) else None
    if raw is None or len(raw) != numel * itemsize:
        raise ProtocolError(f"a tensor of shape {shape} and dtype {body['dtype']} needs {numel * itemsize} bytes")
    t = (torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(dtype).reshape(shape) if numel
         else torch.empty(shape, dtype=dtype))
    if body["requires_grad"] is True and (dtype.is_floating_point):
        t.requires_grad_(True)
    if "grad" in body:
        grad = decode(body["grad"], resolve, budget)
        if isinstance(grad, torch.Tensor) and grad.shape == t.shape and grad.dtype == t.dtype:
            t.grad = grad.detach()
    return t


# ---- the kernel's end ----------------------------------------------------------------------------------------

_objects: dict[int, Any] = {}  # handle -> an object that stays in the kernel


def _keep(obj: Any) -> int:
    handle = len(_objects) + 1
    _objects[handle] = obj
    return handle


def _resolve(handle: int) -> Any:
    return _objects[handle]


def _target(ref: dict) -> Any:
    if "handle" in ref:
        return _objects[ref["handle"]]
    if "library" in ref:  # a helper of the course library that runs where the student's code is
        import importlib

        module, _, name = ref["library"].partition(":")
        return getattr(importlib.import_module(module), name)
    import __main__

    name = ref["name"]
    if name in vars(__main__):
        return vars(__main__)[name]
    raise NameError(f"name {name!r} is not defined in the notebook (run the cell that defines it)")


class Reply:
    """A reply that IPython shows as JSON (``application/json``): the judge reads it from the execute reply."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_json_(self) -> dict:
        return {"reply": self.text}


def serve(payload: str) -> Reply:
    """Run one request of the judge (base64 of JSON) on the notebook's objects; the reply is data only."""
    request = json.loads(base64.b64decode(payload))
    try:
        torch.set_rng_state(torch.frombuffer(bytearray(base64.b64decode(request["rng"])), dtype=torch.uint8).clone())
        with torch.set_grad_enabled(bool(request["grad"])):
            reply = _run(request)
    except BaseException as e:  # every failure is reported as data: its type's name and message
        reply = {"ok": False, "ename": type(e).__name__, "evalue": str(e)[:2000]}
    reply["rng"] = base64.b64encode(_tensor_bytes(torch.get_rng_state())).decode()
    return Reply(json.dumps(reply))


def _run(request: dict) -> dict:
    target = _target(request["target"])
    op = request["op"]
    if op == "handle":
        return {"ok": True, "value": {"__handle__": _keep(target)}}
    if op == "getattr":
        return {"ok": True, "value": encode(getattr(target, request["name"]), _keep)}
    if op == "iter":
        return {"ok": True, "value": encode(list(target), _keep)}
    if op == "len":
        return {"ok": True, "value": len(target)}
    if op == "getitem":
        return {"ok": True, "value": encode(target[decode(request["key"], _resolve)], _keep)}
    if op != "call":
        raise ValueError(f"unknown operation {op!r}")
    args = decode(request["args"], _resolve)
    kwargs = decode(request["kwargs"], _resolve)
    before = {key: _snapshot(v) for key, v in _arguments(args, kwargs)}
    result = target(*args, **kwargs)
    if request.get("backward"):  # gradients of sum(output) with respect to the tensor arguments
        (result[0] if isinstance(result, tuple) else result).sum().backward()
    changed = [key for key, v in _arguments(args, kwargs) if not _same(_snapshot(v), before[key])]
    written = {key: v for key, v in _arguments(args, kwargs) if isinstance(v, (torch.Generator, random.Random))
               or (request.get("backward") and isinstance(v, torch.Tensor) and v.grad is not None)}
    return {"ok": True, "value": encode(result, _keep), "changed": changed, "written": encode(written, _keep)}


def _snapshot(value: Any) -> Any:
    """What a tensor, list or dict argument holds, to tell whether the call changed it in place."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    return json.dumps(encode(value, id)) if isinstance(value, (list, dict)) else None


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and _tensor_bytes(a) == _tensor_bytes(b)
    return a == b


def _arguments(args: list, kwargs: dict):
    """The arguments that a call could change in place: tensors, lists, dicts, generators."""
    for key, value in [*enumerate(args), *kwargs.items()]:
        if isinstance(value, (torch.Tensor, list, dict, torch.Generator, random.Random)):
            yield key, value
