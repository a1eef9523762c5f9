"""Reference float simulator for NIR graphs: forward Euler at a fixed ``dt``, batched, time-first.

``simulate(graph, inputs, dt=1e-4)`` runs any directed acyclic NIR graph (fan-in allowed, nested
``NIRGraph`` nodes flattened) on time-first inputs ``[T, B, *shape]`` and returns a dict from
node name to its recorded output ``[T, B, *shape]``: by default every neuron node (I, IF, LI,
LIF, CubaLI, CubaLIF, Threshold) and every Output node. CLI: ``python -m export.sim GRAPH.nir
--input spikes.npy``.

Semantics (one step of length ``dt`` per input row; every node of a step sees the values of the
same step, as in the NIR paper's reference simulators)::

    input of a node      x[t] = sum of the outputs of its incoming edges (edge order)
    Affine / Linear      W x[t] + b;  Scale: s * x[t];  Conv/pool/Flatten: per step
    Threshold            z[t] = 1(x[t] > threshold)                   (strict, as NIR)
    I                    v[t] = v[t-1] + dt r x[t]                     (output v)
    IF                   v = v[t-1] + dt r x[t];  z = 1(v > v_th);  v[t] = v_reset where z
    LI                   v[t] = v[t-1] + ((v_leak - v[t-1]) + r x[t]) / (tau/dt)   (output v)
    LIF                  the LI update, then z and reset as IF                    (output z)
    CubaLI(F)            i[t] = i[t-1] + (-i[t-1] + w_in x[t]) / (tau_syn/dt), then the
                         LI(F) update of v driven by i[t] (the current of the same step)
    Delay                y[t] = x[t - round(delay/dt)], 0 before the first input

The input ``x[t]`` of a neuron is the per-step value (a spike of weight ``w`` adds
``w r / (tau/dt)`` to a LIF), the convention of the field's exporters (snnTorch, Norse,
SpikingJelly) at dt = 1e-4 s. ``dt·(...)/tau`` is evaluated as ``(...)/(tau/dt)`` with ``tau/dt``
formed in float64: for the LIF layers exported by :mod:`export.nir` this repeats the arithmetic
of :func:`fsve.nn.neurons.lif_multistep` operation by operation, so spikes are bit-identical.
Initial state: ``v = v_leak`` (LI, LIF, CubaLI, CubaLIF), ``v = v_reset`` (IF), ``v = 0`` (I),
synaptic current 0. AvgPool2d divides by the full kernel area (padding counted).

Execution is whole-sequence: nodes run in topological order, each over all T steps at once
(stateless nodes fold T into the batch, neurons loop over T with vectorised updates), so a run
costs one pass over the graph. Recurrent graphs (cycles) are refused.

Modules: :mod:`~export.sim.kernels` (one kernel per node type), :mod:`~export.sim.simulator`
(:class:`Simulator`, :func:`simulate`), :mod:`~export.sim.cli`.
"""

from export.graph import DT_S, NEURON_TYPES
from export.sim.cli import main
from export.sim.kernels import KERNELS
from export.sim.simulator import HostCall, Simulator, simulate

__all__ = [
    "DT_S",
    "KERNELS",
    "NEURON_TYPES",
    "HostCall",
    "Simulator",
    "main",
    "simulate",
]
