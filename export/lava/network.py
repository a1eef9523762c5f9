"""The Lava network of a :class:`~export.lava.graph.LavaGraph`, run in fixed point.

``RingBuffer`` sources, ``Dense``/``Conv`` and ``LIF`` processes (fan-in by connecting several
synapses to one ``LIF.a_in``), run with ``Loihi2SimCfg(select_tag='fixed_pt')``. Lava is
imported only when a network is built: it needs the Lava interpreter (``.venv-lava``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from export.lava.bridge import LAVA_VENV
from export.lava.graph import RECORD_VARS, LavaGraph, LavaLayer, Synapse
from export.lava.layout import (
    from_lava_time_first,
    from_lava_time_last,
    lava_array,
    lava_conv_weight,
    lava_shape,
    lava_time_last,
)

__all__ = ["LavaNetwork", "run_lava"]


def _import_lava() -> dict[str, Any]:
    try:
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.conv.process import Conv
        from lava.proc.dense.process import Dense
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
        from lava.proc.lif.process import LIF
        from lava.proc.monitor.process import Monitor
    except ImportError as e:
        raise ImportError(
            f"export.lava needs lava-nc (Python 3.10): run `make lava-env` and use "
            f"{LAVA_VENV}/bin/python, or call run_in_lava_env() from another interpreter ({e})"
        ) from e
    return {
        "RunSteps": RunSteps,
        "Loihi2SimCfg": Loihi2SimCfg,
        "Conv": Conv,
        "Dense": Dense,
        "Sink": Sink,
        "Source": Source,
        "LIF": LIF,
        "Monitor": Monitor,
    }


def _check_connected(graph: LavaGraph) -> None:
    """Lava runs the component of the process it is started from: refuse disconnected graphs."""
    parent = {name: name for name in (*graph.inputs, *(layer.name for layer in graph.layers))}

    def find(a: str) -> str:
        while parent[a] != a:
            a = parent[a]
        return a

    for layer in graph.layers:
        for syn in layer.synapses:
            parent[find(syn.source)] = find(layer.name)
    roots = {find(n) for n in parent}
    if len(roots) > 1:
        raise ValueError(f"graph has {len(roots)} disconnected parts; Lava runs one network")


def _num_steps(graph: LavaGraph, inputs: Mapping[str, np.ndarray]) -> int:
    steps = set()
    for name, shape in graph.inputs.items():
        if name not in inputs:
            raise ValueError(f"no spikes for input {name!r}")
        x = np.asarray(inputs[name])
        if x.shape[1:] != shape:
            raise ValueError(f"input {name!r}: spikes {x.shape}, expected [T, *{shape}]")
        steps.add(x.shape[0])
    if len(steps) != 1:
        raise ValueError(f"inputs disagree on the number of steps: {sorted(steps)}")
    return steps.pop()


class LavaNetwork:
    """``graph`` built as Lava processes on spike ``inputs {name: [T, *shape]}``, not yet run.

    ``run(num_steps)`` may be called several times (the first compiles and starts the network)
    until T steps in all; ``read()`` then returns ``{layer: {var: int64 [T, *shape]}}`` for the
    steps run. Spikes are recorded by one sink per layer, ``v``/``u`` by one Monitor per
    variable, each read once; record only what you need, monitors are slow. ``stop()`` (or
    leaving a ``with`` block) stops the processes; without it the interpreter hangs at exit.
    """

    def __init__(
        self,
        graph: LavaGraph,
        inputs: Mapping[str, np.ndarray],
        *,
        record: Iterable[str] = RECORD_VARS,
        layers: Iterable[str] | None = None,
    ) -> None:
        record = tuple(record)
        if unknown := set(record) - set(RECORD_VARS):
            raise ValueError(f"cannot record {sorted(unknown)}; choose from {RECORD_VARS}")
        wanted = [layer.name for layer in graph.layers] if layers is None else list(layers)
        for name in wanted:
            graph.layer(name)  # KeyError for an unknown layer
        _check_connected(graph)
        self.num_steps = _num_steps(graph, inputs)
        self.steps_run = 0
        self._lv = lv = _import_lava()

        ports: dict[str, Any] = {}  # node -> its s_out port (Lava shape)
        for name in graph.inputs:
            data = lava_time_last(np.asarray(inputs[name]).astype(np.int32))
            ports[name] = lv["Source"](data=data).s_out
        lifs: dict[str, Any] = {}
        for layer in graph.layers:
            n = layer.neuron
            lif = lv["LIF"](
                shape=lava_shape(layer.shape),
                du=n.du,
                dv=n.dv,
                vth=n.vth,
                bias_mant=lava_array(np.broadcast_to(n.bias_mant, layer.shape).astype(np.int32)),
                bias_exp=lava_array(np.broadcast_to(n.bias_exp, layer.shape).astype(np.int32)),
                name=layer.name,
            )
            for syn in layer.synapses:
                _connect_synapse(lv, syn, ports[syn.source], graph.shape(syn.source), layer, lif)
            ports[layer.name] = lif.s_out
            lifs[layer.name] = lif

        self._sinks, self._monitors = {}, {}
        for name in wanted:
            lif = lifs[name]
            if "s" in record:
                self._sinks[name] = lv["Sink"](shape=lif.s_out.shape, buffer=self.num_steps)
                lif.s_out.connect(self._sinks[name].a_in)
            for var in ("v", "u"):
                if var in record:
                    self._monitors[name, var] = lv["Monitor"]()
                    self._monitors[name, var].probe(getattr(lif, var), self.num_steps)
        self._wanted = wanted
        self._runner = lifs[graph.layers[-1].name]
        self._started = False

    def run(self, num_steps: int | None = None) -> None:
        """Run ``num_steps`` more steps (default: all that are left)."""
        left = self.num_steps - self.steps_run
        steps = left if num_steps is None else int(num_steps)
        if not 0 < steps <= left:
            raise ValueError(f"cannot run {steps} steps: {left} of {self.num_steps} left")
        self._started = True
        self._runner.run(
            condition=self._lv["RunSteps"](num_steps=steps),
            run_cfg=self._lv["Loihi2SimCfg"](select_tag="fixed_pt"),
        )
        self.steps_run += steps

    def read(self) -> dict[str, dict[str, np.ndarray]]:
        """The recorded variables of the steps run so far, ``[steps_run, *shape]`` each."""
        t = self.steps_run
        results: dict[str, dict[str, np.ndarray]] = {name: {} for name in self._wanted}
        for name, sink in self._sinks.items():
            s = from_lava_time_last(sink.data.get())[:t]
            results[name]["s"] = s.astype(np.int64)
        for (name, var), mon in self._monitors.items():
            data = np.asarray(mon.get_data()[name][var])[:t]  # [t, *Lava shape]
            results[name][var] = from_lava_time_first(data).astype(np.int64)
        return results

    def stop(self) -> None:
        if self._started:
            self._started = False
            self._runner.stop()

    def __enter__(self) -> LavaNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_lava(
    graph: LavaGraph,
    inputs: Mapping[str, np.ndarray],
    *,
    record: Iterable[str] = RECORD_VARS,
    layers: Iterable[str] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Run ``graph`` in Lava fixed point on binary spikes ``{input: [T, *shape]}`` for T steps.

    Returns ``{layer: {var: int64 [T, *shape]}}`` for ``var`` in ``record`` (``s``, ``v``, ``u``;
    the state after each step) and the layers named in ``layers`` (default all); see
    :class:`LavaNetwork`. Processes are stopped in any case.
    """
    with LavaNetwork(graph, inputs, record=record, layers=layers) as net:
        net.run()
        return net.read()


def _connect_synapse(
    lv: dict[str, Any],
    syn: Synapse,
    src_port: Any,
    src_shape: tuple[int, ...],
    layer: LavaLayer,
    lif: Any,
) -> None:
    if syn.kind == "dense":
        proc = lv["Dense"](
            weights=syn.weight.astype(np.int32),
            weight_exp=syn.weight_exp,
            num_weight_bits=syn.num_weight_bits,
        )
        # (W, H, C) spikes -> our flattened (C, H, W) order, and back for a 3-D layer
        inp = src_port if len(src_shape) == 1 else src_port.transpose([2, 1, 0]).flatten()
        inp.connect(proc.s_in)
        out = proc.a_out
        if len(layer.shape) == 3:
            out = out.reshape(layer.shape).transpose([2, 1, 0])
        out.connect(lif.a_in)
        return
    if syn.weight_exp < 0:
        raise ValueError(
            f"layer {layer.name!r}: Lava's fixed-point Conv ignores weight_exp; a negative "
            f"weight_exp ({syn.weight_exp}) cannot be folded into the weights"
        )
    weight = np.left_shift(syn.weight, syn.weight_exp)
    proc = lv["Conv"](
        weight=lava_conv_weight(weight).astype(np.int32),
        input_shape=lava_shape(src_shape),
        stride=syn.stride[::-1],
        padding=syn.padding[::-1],
        dilation=syn.dilation[::-1],
        groups=syn.groups,
    )
    src_port.connect(proc.s_in)
    proc.a_out.connect(lif.a_in)
