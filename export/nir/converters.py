"""Which converter exports a module: the table by module type, else a torch.fx trace."""

from __future__ import annotations

import operator
from typing import Any

import torch
from torch import nn

from export.nir.builder import Builder, Converter, Value, join
from export.nir.composites import COMPOSITE_CONVERTERS, VERIFIED
from export.nir.errors import fail
from export.nir.leaves import LEAF_CONVERTERS, SPIKINGJELLY_CONVERTERS, flatten_dims
from fsve.nn.blocks import seq_forward


def convert_traced(b: Builder, m: nn.Module, name: str, x: Value) -> Value:
    """Modules without a converter: trace ``forward`` with torch.fx.

    Exported operations: calls of submodules (directly or through ``seq_forward``), additions
    of two tensors (fan-in edges) and flatten; anything else raises, naming the operation.
    """

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, mod: nn.Module, qualname: str) -> bool:
            if lookup(type(mod)) is not None:
                return True
            origin = type(mod).__module__
            return origin.startswith(("torch.nn", "spikingjelly"))

    if type(m).__module__.startswith(("torch.nn", "spikingjelly")):
        fail(name, m, "no NIR mapping for this module type")
    try:
        graph = Tracer(autowrap_functions=(seq_forward,)).trace(m)
    except Exception as err:  # any tracing failure is reported the same way
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        fail(name, m, f"no converter for this type and torch.fx cannot trace its forward ({first})")
    env: dict[Any, Value] = {}
    result = None
    qualname = {id(sub): q for q, sub in m.named_modules()}
    for node in graph.nodes:
        args = [env[a] if isinstance(a, torch.fx.Node) else a for a in node.args]
        if node.op == "placeholder":
            if env:
                fail(name, m, "forward takes more than one input")
            env[node] = x
        elif node.op == "call_module":
            sub = m.get_submodule(node.target)
            if len(args) != 1 or not isinstance(args[0], Value) or node.kwargs:
                fail(name, m, f"call of {node.target!r} with other than one tensor argument")
            env[node] = b.convert(sub, join(name, str(node.target)), args[0])
        elif node.op == "get_attr" and isinstance(_attr(m, node.target), nn.Module):
            env[node] = _attr(m, node.target)  # a submodule passed to seq_forward
        elif node.op == "call_function" and node.target is seq_forward:
            sub, val = [*args, None, None][:2]
            if id(sub) not in qualname or not isinstance(val, Value) or node.kwargs:
                fail(name, m, "seq_forward of other than a submodule and one tensor")
            env[node] = b.convert(sub, join(name, qualname[id(sub)]), val)
        elif node.op == "call_function" and node.target in (operator.add, torch.add):
            if len(args) != 2 or not all(isinstance(a, Value) for a in args) or node.kwargs:
                fail(name, m, "only additions of two tensors become fan-in edges")
            env[node] = b.add(args[0], args[1], join(name, node.name))
        elif (node.op == "call_function" and node.target is torch.flatten) or (
            node.op == "call_method" and node.target == "flatten"
        ):
            start = args[1] if len(args) > 1 else node.kwargs.get("start_dim", 0)
            end = args[2] if len(args) > 2 else node.kwargs.get("end_dim", -1)
            env[node] = flatten_dims(b, m, join(name, node.name), args[0], start, end, 2)
        elif node.op == "output":
            result = args[0]
        else:
            target = getattr(node.target, "__name__", node.target)
            fail(
                name,
                m,
                f"operation {node.op} {target!r} has no NIR equivalent (exported:"
                " module calls, additions of two tensors, flatten)",
            )
    if not isinstance(result, Value):
        fail(name, m, "forward must return one tensor")
    return result


def _attr(m: nn.Module, target: str) -> Any:
    for part in target.split("."):
        m = getattr(m, part, None)
    return m


# module type -> converter; looked up along the MRO, so subclasses (SpikingJelly's layer.*)
# use the entry of their torch base class
CONVERTERS: dict[type, Converter] = {**LEAF_CONVERTERS, **COMPOSITE_CONVERTERS}
COMPOSITES = VERIFIED | {convert_traced}  # checked against the module's forward


def lookup(cls: type) -> Converter | None:
    """The converter of a module type (along its MRO), ``None`` if none is listed."""
    for base in cls.__mro__:
        if base in CONVERTERS:
            return CONVERTERS[base]
        if base.__module__.startswith("spikingjelly") and base.__name__ in SPIKINGJELLY_CONVERTERS:
            return SPIKINGJELLY_CONVERTERS[base.__name__]
    return None


def converter_for(cls: type) -> Converter:
    """The converter of a module type: the listed one, else :func:`convert_traced`."""
    fn = lookup(cls)
    return convert_traced if fn is None else fn
