"""Audit: torch functions that run directly inside modules without a counting rule."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn
from torch.nn.modules.module import (
    register_module_forward_hook,
    register_module_forward_pre_hook,
)
from torch.overrides import TorchFunctionMode, resolve_name

from energy.counting.collector import Collector

__all__ = ["Audit"]

# torch functions that compute nothing (views, metadata, copies, creation)
_FREE_FUNCTIONS = frozenset(
    """
    view reshape flatten unflatten transpose permute contiguous squeeze unsqueeze expand
    expand_as t chunk split unbind narrow select __getitem__ size dim numel to float double
    half bfloat16 type cat concat stack clone detach is_floating_point is_complex empty_like
    zeros_like ones_like new_zeros new_ones new_empty __len__ __iter__ __format__ __repr__
    __bool__ __index__ __hash__ __eq__ __ne__ is_contiguous element_size data_ptr
    untyped_storage requires_grad_ __setstate__ __reduce_ex__ as_strided movedim swapaxes
    tolist item all any equal isfinite cpu cuda stride storage_offset __get__
    """.split()
)


def _function_name(func: Callable) -> str:
    try:
        return resolve_name(func) or getattr(func, "__name__", repr(func))
    except Exception:  # resolve_name can fail on exotic callables
        return getattr(func, "__name__", repr(func))


_NAMES: dict[Callable, str | None] = {}  # func -> its name, None if it computes nothing


def _counted_name(func: Callable) -> str | None:
    """The name of ``func`` if it computes, else None (cached: resolving names is slow)."""
    try:
        return _NAMES[func]
    except KeyError:
        pass
    except TypeError:  # unhashable callable
        full = _function_name(func)
        return None if full.rsplit(".", 1)[-1] in _FREE_FUNCTIONS else full
    full = _function_name(func)
    name = _NAMES[func] = None if full.rsplit(".", 1)[-1] in _FREE_FUNCTIONS else full
    return name


class Audit(TorchFunctionMode):
    """Reports torch functions that compute inside modules the collector does not cover.

    The mode is on the torch-function stack only while the innermost running module is not
    covered (issue 15: the audit of a fully counted model costs a few hooks, not a Python call
    per torch function); global module hooks switch it on and off at module boundaries. Enter
    it after attaching the collector, so that the collector's rules run before the mode comes
    back on for the parent module.
    """

    def __init__(self, collector: Collector) -> None:
        super().__init__()
        self.c = collector
        self.stack: list[nn.Module] = []
        self._handles: list[Any] = []
        self._active = False

    def __enter__(self) -> Audit:
        self._handles.append(register_module_forward_pre_hook(self._push))
        self._handles.append(register_module_forward_hook(self._pop))
        self._switch(not self.c.covers(self.c.model))
        return self

    def __exit__(self, *exc: object) -> None:
        self._switch(False)
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self.stack.clear()

    def _switch(self, on: bool) -> None:
        """Push the mode on (or pop it off) the torch-function stack."""
        if on and not self._active:
            TorchFunctionMode.__enter__(self)
        elif self._active and not on:
            TorchFunctionMode.__exit__(self, None, None, None)
        self._active = on

    def _push(self, module: nn.Module, args: tuple) -> None:
        if id(module) not in self.c.names:  # not a module of this model
            return
        self.stack.append(module)
        self._switch(not self.c.covers(module))

    def _pop(self, module: nn.Module, args: tuple, out: Any) -> None:
        if id(module) not in self.c.names:
            return
        if self.stack and self.stack[-1] is module:
            self.stack.pop()
        self._switch(not self.c.covers(self.stack[-1] if self.stack else self.c.model))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        top = self.stack[-1] if self.stack else self.c.model
        if not self.c.covers(top):
            full = _counted_name(func)
            if full is not None:
                self.c.unknown_functional[(self.c.names.get(id(top), "?"), full)] += 1
        return func(*args, **kwargs)
