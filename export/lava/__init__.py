"""Run a quantised spiking graph in Intel Lava's fixed-point models; write lava-dl netx HDF5.

A :class:`LavaGraph` is a quantised graph as plain data (integer numpy arrays and ints, no
torch, no Lava; :func:`from_quantized` makes one from ``export.loihi.quantize``): spike inputs
and LIF layers, each layer driven by the sum of its synapses (Dense or Conv from an input
or an earlier layer; several synapses into one layer are a residual join). ``run_lava`` builds
the Lava network (``RingBuffer`` sources, ``Dense``/``Conv`` and ``LIF`` processes, fan-in by
connecting several synapses to one ``LIF.a_in``) and runs it with
``Loihi2SimCfg(select_tag='fixed_pt')`` (:class:`LavaNetwork` to run it in parts);
``write_netx`` writes chain-shaped graphs as netx HDF5.

Lava (``lava-nc==0.10.0``) needs Python 3.10 and lives in ``.venv-lava`` (``make lava-env``),
never in the main venv. This package imports under both (numpy and h5py only, no torch or
nir: the bit widths come from the numpy-only :mod:`export.fixed_point`): Lava is imported
only inside the functions that run it, so the main 3.11 venv can build graphs and call
:func:`run_in_lava_env`, which hands the graph over as ``.npz`` to
``.venv-lava/bin/python -m export.lava run IN OUT``.

Fixed-point semantics (``../shared/REFERENCE.md`` section 3): per step a Dense sends the
accumulation of the previous step, so each synapse adds one step of delay. Lava's
``PyConvModelFixed`` neither truncates weights nor applies ``weight_exp``; a non-negative conv
``weight_exp`` is applied here by shifting the weights (exact: ``Σ(w << e) = (Σw) << e``), a
negative one is refused. Conv sums wrap to 24-bit two's complement.

Layouts: ours are time-first, ``[T, n]`` or ``[T, C, H, W]``; conv weights ``[C_out, C_in/groups,
kh, kw]`` as cross-correlation (PyTorch, NIR). Lava's ``[*shape, T]`` buffers, ``(W, H, C)``
images and flipped ``(C_out, kw, kh, C_in)`` true-convolution kernels appear only in
:mod:`.layout`.

Modules: :mod:`.graph` (the plain-data graph), :mod:`.convert` (from export.loihi),
:mod:`.network` (the Lava processes), :mod:`.layout` (our layouts <-> Lava's), :mod:`.netx`,
:mod:`.exchange` (the ``.npz`` files), :mod:`.bridge` (Lava from any Python), :mod:`.compile`
(any NIR graph + the user's spikes -> a run file; main venv), :mod:`.cli`.

CLI (``compile`` in the main venv, the others with the Lava interpreter)::

    python -m export.lava compile GRAPH.nir OUT.npz --input spikes.npy  # [--run]: + Lava

    python -m export.lava run IN.npz OUT.npz      # IN from save_run, OUT: s/<layer>, v/<layer>...
    python -m export.lava netx IN.npz OUT.h5      # IN from save_run (inputs optional)
"""

from export.lava.bridge import LAVA_VENV, REPO_ROOT, lava_python, run_in_lava_env
from export.lava.cli import main
from export.lava.convert import MAX_COMPOSED_WEIGHTS, from_quantized
from export.lava.exchange import (
    FORMAT,
    FORMAT_VERSION,
    load_results,
    load_run,
    save_results,
    save_run,
)
from export.lava.graph import LIFQ, RECORD_VARS, LavaGraph, LavaLayer, Synapse
from export.lava.network import LavaNetwork, run_lava
from export.lava.netx import NETX_BIAS_EXP, NetxError, write_netx

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "LAVA_VENV",
    "LIFQ",
    "MAX_COMPOSED_WEIGHTS",
    "NETX_BIAS_EXP",
    "RECORD_VARS",
    "REPO_ROOT",
    "LavaGraph",
    "LavaLayer",
    "LavaNetwork",
    "NetxError",
    "Synapse",
    "from_quantized",
    "lava_python",
    "load_results",
    "load_run",
    "main",
    "run_in_lava_env",
    "run_lava",
    "save_results",
    "save_run",
    "write_netx",
]
