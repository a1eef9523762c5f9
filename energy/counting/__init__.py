"""Per-layer counts from forward passes, through forward hooks chosen by module type.

A :class:`Collector` walks a model once and attaches, to every module whose type (or nearest
base class) is in the rule table (:func:`rule_table`), a forward hook that records *primitives*
for that layer: dense MACs, exact synaptic operations (SOPs), input events, neuron updates,
spikes, tensor sizes. Conventions turn primitives into the CSV columns
(:mod:`energy.conventions`); nothing here depends on a convention or a cost model.

Counting rules (shapes time-first as elsewhere; a conv sees ``[T*B, C, H, W]``):

- conv on integer-valued input ``x`` (binary spikes or multi-level counts):
  ``SOPs = Σ_positions |x| · fanout`` with ``fanout[i, j]`` the number of output positions the
  input position reaches (exact at padding borders and for strides), times ``C_out / groups``.
  ``fanout`` is the transposed convolution of ones, built once per shape from its separable
  1-D factors; the hook itself costs one reduction over the input and one small dot product.
- linear on integer input: ``SOPs = Σ|x| · out_features``.
- :class:`~fsve.nn.attention.SpikeMatmul` ``A @ B`` with both operands integer:
  ``SOPs = Σ_{i,j,l} |A_il|·|B_lj| = Σ_l (Σ_i |A_il|)(Σ_j |B_lj|)`` (an accumulate happens only
  where both operands are non-zero); ``sops_nominal = Σ|A| · m`` is the count if only A were
  event-driven. One integer operand: event-driven on that one. Real operands: dense MACs.
- any synaptic layer on real input: dense MACs (``macs``).
- LIF / SN: neuron updates = input elements (neurons x steps), spikes = sum of the output.

Functional operations inside our own container modules (residual adds, the rate mean of the
FSVE head, the teacher's ReLUs, products and attention) are counted by explicit rules for those
container types. Leaf modules without a rule are reported as unknown; with ``audit=True`` a
torch function mode also reports torch functions that run directly inside a module without a
rule (e.g. an ``F.relu`` in a container nobody taught us), so nothing is skipped silently.

Neurons of SpikingJelly, snnTorch, Norse and Sinabs are counted by :mod:`.frameworks` (loaded
only when the framework is); spiking-looking modules without a rule are recorded as
``unknown_spiking`` and reported loudly (issue 15).

Modules: :mod:`.collector` (the hooks and records), :mod:`.table` (module type -> rule),
the rules by family (:mod:`.synapses`, :mod:`.elementwise`, :mod:`.attention`,
:mod:`.containers`, :mod:`.frameworks`), :mod:`.fanout`, :mod:`.tensors` (exact sums),
:mod:`.audit`.
"""

from energy.counting.audit import Audit
from energy.counting.collector import Collector
from energy.counting.fanout import conv_fanout
from energy.counting.records import LayerRecord, Rule, RuleSpec
from energy.counting.synapses import dense_product
from energy.counting.table import FREE_TYPES, rule_table
from energy.counting.tensors import exact_sum

__all__ = [
    "FREE_TYPES",
    "Audit",
    "Collector",
    "LayerRecord",
    "Rule",
    "RuleSpec",
    "conv_fanout",
    "dense_product",
    "exact_sum",
    "rule_table",
]
