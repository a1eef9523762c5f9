"""Break-even firing rate: the solver on hand numbers, and end to end on a linear-LIF net."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from energy.breakeven import plot_energy_vs_rate, solve_break_even
from energy.conventions import scale_events
from energy.costs import PRESETS
from energy.pricing import total_energy_j
from energy.profile import profile_model
from fsve.nn.neurons import LIF


def test_solver_reproduces_equal_energies():
    # E_snn(r) = 2 + 6 r / 0.1; E_ann = 5 -> r = 0.1 x (5 - 2) / 6 = 0.05
    be = solve_break_even(2.0, 6.0, 5.0, 0.1)
    assert be.rate == pytest.approx(0.05, rel=1e-15) and be.verdict == "rate"
    assert be.snn_j(be.rate) == pytest.approx(5.0, rel=1e-15)
    assert be.snn_j(0.1) == pytest.approx(8.0)  # the measured point: fixed + event


@pytest.mark.parametrize(
    "fixed,event,ann,rate,verdict",
    [
        (6.0, 1.0, 5.0, 0.0, "never"),  # more than the ANN even without spikes
        (5.0, 1.0, 5.0, 0.0, "never"),  # equal at r = 0: never cheaper
        (6.0, 0.0, 5.0, 0.0, "never"),  # nothing scales and the rest costs more
        (2.0, 0.0, 5.0, math.inf, "always"),  # nothing scales and the rest costs less
    ],
)
def test_solver_degenerate_cases(fixed, event, ann, rate, verdict):
    be = solve_break_even(fixed, event, ann, 0.1)
    assert be.rate == rate and be.verdict == verdict


def test_solver_undefined_and_bad_input():
    assert solve_break_even(1.0, 2.0, 5.0, 0.0).verdict == "undefined"  # input spikes only
    with pytest.raises(ValueError, match="event_j"):
        solve_break_even(1.0, -2.0, 5.0, 0.1)
    with pytest.raises(ValueError, match="ann_j"):
        solve_break_even(1.0, 2.0, math.nan, 0.1)


class LinearLIF(nn.Module):
    """``[T, B, 6]`` spikes -> linear 6 -> 4 (no bias, all weights ``w``) -> LIF."""

    def __init__(self, w: float = 0.5) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 4, bias=False)
        self.lif = LIF()
        with torch.no_grad():
            self.fc.weight.fill_(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif(self.fc(x))


def _spikes(t: int = 4, b: int = 3) -> torch.Tensor:
    rng = np.random.default_rng(0)
    return torch.from_numpy((rng.random((t, b, 6)) < 0.4).astype(np.float32))


def test_break_even_by_hand_on_linear_lif(tmp_path):
    net, x = LinearLIF().eval(), _spikes()
    t, b = x.shape[:2]
    report = profile_model(net, x, costs="paper", batch_dim=1, time_steps=t)
    s = net(x)
    spikes_in, spikes_out = x.sum().item(), s.sum().item()
    n = t * b * 4  # neuron updates = linear outputs
    sops, dense = 4 * spikes_in, t * b * 6 * 4
    # paper costs, simple convention (pJ): E_C 4.6 per op, E_U 0.9, E_M 5 per access
    fixed = n * 5 + n * 0.9 + 3 * n * 5  # fc output writes; LIF update, current read, V r/w
    event = sops * (4.6 + 5) + spikes_in * 5 + spikes_out * 5  # SOP + weight, input, spike
    ann = dense * 4.6 + (t * b * 6 + dense + n) * 5  # MACs; input, weight, output accesses
    fixed, event, ann = fixed / b * 1e-12, event / b * 1e-12, ann / b * 1e-12  # J per sample
    rate = spikes_out / n
    be = report.break_even
    assert be.fixed_j == pytest.approx(fixed, rel=1e-12)
    assert be.event_j == pytest.approx(event, rel=1e-12)
    assert be.ann_j == pytest.approx(ann, rel=1e-12)
    assert be.measured_rate == pytest.approx(rate, rel=1e-12)
    assert be.fixed_j + be.event_j == pytest.approx(report.row("snn")["total_j"], rel=1e-12)
    expected = rate * (ann - fixed) / event
    assert rate < expected < 1  # 41.7% measured, break-even 68.1%
    assert report.row("snn")["break_even_rate"] == pytest.approx(expected, rel=1e-12)
    assert be.snn_j(be.rate) == pytest.approx(report.row("ann")["total_j"], rel=1e-12)
    assert math.isnan(report.row("ann")["break_even_rate"])
    assert f"{100 * expected:.3g}%" in report.table()
    paths = report.save(tmp_path)
    assert paths["rate_plot"].read_bytes()[:4] == b"\x89PNG"
    back = pd.read_csv(paths["summary"]).set_index("model")
    assert back.loc["snn", "break_even_rate"] == pytest.approx(expected, rel=1e-12)


def test_break_even_above_one_is_said():
    report = profile_model(LinearLIF(w=1.0).eval(), _spikes(), batch_dim=1)
    assert report.break_even.rate > 1  # 127%: cheaper at any binary rate
    assert "above 100%" in report.table()


def test_never_and_always_end_to_end(tmp_path):
    net, x = LinearLIF().eval(), _spikes()
    costly_neurons = dataclasses.replace(PRESETS["paper"], e_neuron_pj=1e4)
    never = profile_model(net, x, costs=costly_neurons, batch_dim=1)
    assert never.row("snn")["break_even_rate"] == 0.0 and never.break_even.verdict == "never"
    assert "even with no spikes" in never.table()
    free_events = dataclasses.replace(
        PRESETS["paper"], e_ac_pj=0.0, e_mem_pj=0.0, e_state_pj=0.0, e_neuron_pj=0.1
    )
    always = profile_model(net, x, costs=free_events, batch_dim=1)
    assert always.break_even.verdict == "always"
    assert math.isinf(always.row("snn")["break_even_rate"])
    paths = always.save(tmp_path / "always")
    assert math.isinf(
        pd.read_csv(paths["summary"]).set_index("model").loc["snn", "break_even_rate"]
    )
    plot_energy_vs_rate(never, str(tmp_path / "never.png"))
    assert (tmp_path / "never.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("convention", ["simple", "lemaire", "sdt"])
def test_energy_is_linear_in_the_spike_scale(micro_fsve, clips, convention):
    x = clips(micro_fsve.cfg, 2, seed=8)
    report = profile_model(micro_fsve, x, costs="horowitz45", convention=convention)
    be = report.break_even
    assert be.fixed_j + be.event_j == pytest.approx(report.row("snn")["total_j"], rel=1e-9)
    assert be.ann_j == pytest.approx(report.row("ann")["total_j"], rel=1e-9)
    assert 0 < be.fixed_j and 0 < be.event_j
    assert be.snn_j(be.rate) == pytest.approx(be.ann_j, rel=1e-9)


def test_half_the_spikes_is_the_midpoint(micro_fsve, clips):
    from energy.counting import Collector
    from energy.report import ModelCounts

    x = clips(micro_fsve.cfg, 1, seed=9)
    c = Collector(micro_fsve, True, micro_fsve.cfg.num_blocks)
    with c, torch.no_grad():
        c.begin_batch(1)
        micro_fsve.encode_video(x)
        run = ModelCounts("FSVE", [(1, c.end_batch())], {})
    cost = PRESETS["horowitz45"]
    e0, e1, half = (total_energy_j(run, "snn", cost, "simple", "fold", s) for s in (0, 1, 0.5))
    assert half == pytest.approx((e0 + e1) / 2, rel=1e-12)
    assert e0 < e1


def test_scale_events_touches_only_spike_counts():
    syn = {"sops": 70.0, "sops_nominal": 90.0, "spikes_in": 10.0, "macs": 5.0, "in_numel": 50.0}
    half = scale_events("synapse", syn, 0.5)
    assert (half["sops"], half["sops_nominal"], half["spikes_in"]) == (35.0, 45.0, 5.0)
    assert half["macs"] == 5.0 and half["in_numel"] == 50.0 and syn["sops"] == 70.0
    assert scale_events("neuron", {"updates": 40.0, "spikes_out": 6.0}, 0.0) == {
        "updates": 40.0,
        "spikes_out": 0.0,
    }
    head = scale_events("elementwise", {"ann_adds": 8.0, "snn_adds": 3.0}, 2.0)
    assert head == {"ann_adds": 8.0, "snn_adds": 6.0}  # the SNN's per-spike counter
    assert scale_events("norm", {"numel": 40.0}, 0.0) == {"numel": 40.0}


def test_time_steps_in_the_provenance_only_when_known():
    net, x = LinearLIF().eval(), _spikes()
    unknown = profile_model(net, x, batch_dim=1)
    assert unknown.time_steps is None and "T not known" in unknown.table()
    assert unknown.provenance()["time_steps"] is None
    known = profile_model(net, x, batch_dim=1, time_steps=4)
    assert known.provenance()["time_steps"] == 4 and "T = 4 steps per sample" in known.table()
