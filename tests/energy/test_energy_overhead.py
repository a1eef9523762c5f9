"""The cheap profiler (issue 15, item 6): global hooks, a selective audit, cached fan-outs, lazy
tables, exact sums; each keeps the figures of the straightforward implementation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as torch_module

from energy.costs import load_costs
from energy.counting import Audit, Collector, RuleSpec, conv_fanout, exact_sum, rule_table
from energy.counting.fanout import shared_fanout
from energy.counting.tensors import integral_
from energy.profile import profile_model
from energy.report import ModelCounts, _tables, build_report


def _clean() -> tuple[int, int, int]:
    """Torch-function modes and global module hooks left behind (all must be 0)."""
    return (
        torch._C._len_torch_function_stack(),
        len(torch_module._global_forward_hooks),
        len(torch_module._global_forward_pre_hooks),
    )


class Hidden(nn.Module):
    """A container computing functionally around a counted layer."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc(x)) * 2


class Wrapper(nn.Module):
    """Covered by a rule of the test; computes itself and holds an uncovered child."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = Hidden()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.inner(x)) + x


def _wrapper_rule(c: Collector, name: str, m: nn.Module, args: tuple, out: torch.Tensor) -> None:
    c.elementwise(name, "wrapper", ann_other_ops=out.numel())


def test_audit_reports_only_functions_of_uncovered_modules():
    model = nn.Sequential(Wrapper(), Hidden())
    rules = {**rule_table(), Wrapper: RuleSpec(_wrapper_rule)}
    x = torch.randn(2, 4)
    with Collector(model, rules=rules) as c, torch.no_grad():
        c.begin_batch(2)
        with Audit(c):
            model(x)
        records = c.end_batch()
    found = dict(c.unknown_functional)
    # relu and mul inside both Hidden containers, one call each; tanh and add belong to the
    # covered Wrapper; the Linear rules' own reductions are never seen
    assert found == {
        ("0.inner", "torch.nn.functional.relu"): 1,
        ("0.inner", "torch.Tensor.mul"): 1,
        ("1", "torch.nn.functional.relu"): 1,
        ("1", "torch.Tensor.mul"): 1,
    }
    assert set(records) == {"0.inner.fc", "0", "1.fc"}
    assert _clean() == (0, 0, 0)


class Boom(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")


def test_a_failing_forward_leaves_no_mode_and_no_hook_behind():
    model = nn.Sequential(Hidden(), nn.Sequential(Boom()))
    with pytest.raises(RuntimeError, match="boom"):
        profile_model(model, torch.randn(2, 4))
    assert _clean() == (0, 0, 0)
    report = profile_model(nn.Sequential(Hidden()), torch.randn(2, 4))  # a clean audit after
    assert any("relu" in line for line in report.unknown)
    assert _clean() == (0, 0, 0)


def test_two_collectors_count_only_their_own_model():
    a, b = nn.Sequential(nn.Linear(4, 3)), nn.Sequential(nn.Linear(4, 5))
    x = torch.ones(2, 4)
    with Collector(a, event_driven=False) as ca, Collector(b, event_driven=False) as cb:
        with torch.no_grad():
            ca.begin_batch(2)
            cb.begin_batch(2)
            a(x)
            b(x)
            b(x)
            ra, rb = ca.end_batch(), cb.end_batch()
    assert ra["0"].prims["macs"] == 2 * 4 * 3 and ra["0"].prims["calls"] == 1
    assert rb["0"].prims["macs"] == 2 * (2 * 4 * 5) and rb["0"].prims["calls"] == 2
    assert _clean() == (0, 0, 0)


def test_shared_fanout_equals_conv_fanout_and_is_built_once():
    key = ((9, 7), (5, 4), (3, 3), (2, 2), (1, 1), (1, 1))
    first = shared_fanout(*key)
    assert shared_fanout(*key) is first
    assert torch.equal(first, conv_fanout(*key))
    assert conv_fanout(*key) is not conv_fanout(*key)  # the public builder hands out copies


@pytest.mark.parametrize("n", [1, 1000, 1 << 16, (1 << 16) + 1, 3 << 15, 5 << 14, 1_234_567])
def test_exact_sum_is_exact_for_integer_tensors(n):
    g = torch.Generator().manual_seed(n)
    t = torch.randint(-256, 257, (n,), generator=g).to(torch.float32)
    assert exact_sum(t).dtype == torch.float64
    assert int(exact_sum(t)) == int(t.to(torch.int64).sum())
    spikes = (torch.rand(n, generator=g) < 0.3).float()
    assert int(exact_sum(spikes)) == int(spikes.count_nonzero())


def test_integral_checks_in_place():
    t = torch.tensor([0.0, 3.0, -2.0, 7.0])
    assert bool(integral_(t.clone()))
    u = torch.tensor([0.0, 1.5, -2.0])
    assert not bool(integral_(u))
    assert torch.equal(u, torch.tensor([0.0, 0.5, -0.0]))  # overwritten by its fraction


def test_report_tables_are_built_once_on_first_use():
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    x = torch.ones(3, 4)
    report = profile_model(model, x)
    assert report._summary is None and report._layers is None  # nothing built yet
    summary = report.summary
    assert report.summary is summary and report._layers is not None
    report.summary["baseline"] = "mine"  # what profile_checkpoint does
    assert (report.summary["baseline"] == "mine").all()
    ann = report.row("ann")
    assert ann["macs"] == 4 * 6 + 6 * 2  # per sample
    assert report.layers["layer"].tolist() == ["0", "1", "2"]


def test_lazy_tables_equal_the_eager_build(micro_fsve, clips):
    x = clips(micro_fsve.cfg, 2, seed=3)
    report = profile_model(micro_fsve, x, audit=False)
    c = Collector(micro_fsve, True, micro_fsve.cfg.num_blocks)
    with c, torch.no_grad():
        c.begin_batch(2)
        micro_fsve.encode_video(x)
        counts = ModelCounts("FSVE", [(2, c.end_batch())], {})
    cost = load_costs("paper")
    summary, layers, break_even = _tables(
        counts, None, True, cost, "simple", "fold", "twin", 2, [], []
    )
    assert report.layers.equals(layers)
    assert report.summary.equals(summary)
    assert report.break_even == break_even
    lazy = build_report(counts, None, True, cost, "simple", "fold", "twin", 2)
    assert lazy.summary.equals(summary) and lazy.layers.equals(layers)
    assert lazy.break_even == break_even
