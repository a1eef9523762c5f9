"""The rule table: module type -> counting rule, and the module types that compute nothing."""

from __future__ import annotations

from torch import nn

from energy.counting.attention import mha, transformer_layer
from energy.counting.containers import (
    add_input,
    attention_pool,
    avgpool_head,
    bottleneck,
    hsfe,
    reshape_only,
    residual,
    spatial_attention,
    spklip,
    visual_encoder,
)
from energy.counting.elementwise import (
    activation,
    avg_pool,
    batch_norm,
    embedding,
    layer_norm,
    max_pool,
    neuron,
)
from energy.counting.frameworks import framework_rules
from energy.counting.records import RuleSpec
from energy.counting.synapses import conv, linear, spike_matmul

__all__ = ["FREE_TYPES", "rule_table"]

FREE_TYPES: tuple[type, ...] = (
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.Flatten,
    nn.Unflatten,
)


def rule_table() -> dict[type, RuleSpec]:
    """Module type -> counting rule. Subclasses use the rule of their nearest listed base.

    Neurons of other SNN frameworks (:mod:`.frameworks`) are added when their framework is
    already imported (a model using it must have imported it), so ``import energy`` stays
    light and a framework that is not installed costs nothing.
    """
    from fsve.models import student, teacher
    from fsve.nn import attention, blocks, neurons, norm

    table: dict[type, RuleSpec] = {
        nn.Conv1d: RuleSpec(conv),
        nn.Conv2d: RuleSpec(conv),
        nn.Conv3d: RuleSpec(conv),
        nn.Linear: RuleSpec(linear),
        attention.SpikeMatmul: RuleSpec(spike_matmul),
        neurons.LIF: RuleSpec(neuron(stateful=True)),
        attention.SN: RuleSpec(neuron(stateful=False)),
        attention.AttentionSN: RuleSpec(neuron(stateful=False)),
        norm.TDBN1d: RuleSpec(batch_norm),
        norm.TDBN2d: RuleSpec(batch_norm),
        nn.modules.batchnorm._BatchNorm: RuleSpec(batch_norm),
        blocks.MSBlock: RuleSpec(residual),
        blocks.ConvTDBN: RuleSpec(reshape_only),
        attention.ESDSA: RuleSpec(residual),
        attention.SpikingMLP: RuleSpec(residual),
        student.SpikingVisualEncoder: RuleSpec(visual_encoder),
        nn.AvgPool1d: RuleSpec(avg_pool),
        nn.AvgPool2d: RuleSpec(avg_pool),
        nn.AvgPool3d: RuleSpec(avg_pool),
        nn.AdaptiveAvgPool1d: RuleSpec(avg_pool),
        nn.AdaptiveAvgPool2d: RuleSpec(avg_pool),
        nn.AdaptiveAvgPool3d: RuleSpec(avg_pool),
        nn.MaxPool1d: RuleSpec(max_pool),
        nn.MaxPool2d: RuleSpec(max_pool),
        nn.MaxPool3d: RuleSpec(max_pool),
        nn.AdaptiveMaxPool2d: RuleSpec(max_pool),
        nn.ReLU: RuleSpec(activation),
        nn.ReLU6: RuleSpec(activation),
        nn.LeakyReLU: RuleSpec(activation),
        nn.GELU: RuleSpec(activation),
        nn.SiLU: RuleSpec(activation),
        nn.Sigmoid: RuleSpec(activation),
        nn.Tanh: RuleSpec(activation),
        nn.Softmax: RuleSpec(activation),
        nn.LayerNorm: RuleSpec(layer_norm),
        nn.Embedding: RuleSpec(embedding),
        nn.MultiheadAttention: RuleSpec(mha, opaque=True),
        nn.TransformerEncoderLayer: RuleSpec(transformer_layer, opaque=True),
        teacher.HSFE: RuleSpec(hsfe),
        teacher.SpatialAttention: RuleSpec(spatial_attention),
        teacher.Bottleneck: RuleSpec(bottleneck),
        teacher.AttentionPool2d: RuleSpec(attention_pool),
        teacher.AvgPoolHead: RuleSpec(avgpool_head),
        teacher.TemporalTransformer: RuleSpec(add_input),
        teacher.SPKLIP: RuleSpec(spklip),
    }
    table.update(framework_rules())
    return table
