"""NIR simulator speed: steps/s of ``export.sim`` for a batch of 32 on the exported FSVE tiny.

Usage: ``python benchmarks/bench_sim.py [--checkpoint CKPT] [--batch 32] [--threads 1]``.
Measured interleaved in the same run (median wall time):

- FSVE tiny (a checkpoint, or an untrained one calibrated on the clips so that it spikes),
  exported with ``export.nir.to_nir``: the split model (NIR graph in ``export.sim`` plus the
  host program) on a batch of clips, with float32 and with float64 synaptic sums, against the
  PyTorch model's ``encode_video`` on the same clips. A step is one time step (one sub-block)
  of the whole batch.
- Peer on a graph both can run: a 5-layer conv-LIF chain with FSVE tiny's stem and stage
  shapes, exported once to NIR and simulated by ``export.sim`` and by SpikingJelly's
  ``import_from_nir`` (nirtorch's interpreter), with their spikes compared.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from timing import interleaved_median_s
from torch import nn

from export.nir import to_nir
from export.sim import Simulator
from fsve.models.student import FSVE, fsve_config


def _clips(cfg, batch: int) -> torch.Tensor:
    """Clips of the built-in test split when present (repeated to ``batch``), else random."""
    root = Path("data/synth")
    if (root / "manifest.csv").is_file():
        from fsve.data.dataset import SpikeDataset, collate

        ds = SpikeDataset(root, "test")
        if tuple(ds[0]["spikes"].shape[-2:]) == (cfg.height, cfg.width):
            return collate([ds[i % len(ds)] for i in range(batch)])["spikes"]
    g = torch.Generator().manual_seed(0)
    shape = (batch, cfg.num_blocks, cfg.block_frames, cfg.height, cfg.width)
    return torch.rand(shape, generator=g) < 0.06


def _model(checkpoint: Path | None, x_cfg_batch: int) -> tuple[FSVE, torch.Tensor]:
    if checkpoint is not None:
        from fsve.checkpoint import load_model

        model, _ = load_model(checkpoint, kind="fsve")
        return model, _clips(model.cfg, x_cfg_batch)
    torch.manual_seed(0)
    model = FSVE(fsve_config("tiny"))
    x = _clips(model.cfg, x_cfg_batch)
    saved = {}
    with torch.no_grad():
        for m in model.modules():  # give the zero-initialised residual branches weight
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d) and not m.weight.any():
                m.weight.fill_(0.5)
            if isinstance(getattr(m, "momentum", None), float):
                saved[m] = m.momentum
                m.momentum = 1.0
        model.train()
        model.encode_video(x)
    for m, momentum in saved.items():
        m.momentum = momentum
    return model.eval(), x


def bench_fsve(checkpoint: Path | None, batch: int, warmup: int, repeats: int) -> dict:
    model, x = _model(checkpoint, batch)
    ex = to_nir(model, x[:2])
    split = ex.split_model()
    exact = ex.split_model(accumulate=torch.float64)
    steps = model.cfg.num_blocks

    def sim() -> None:
        split.run(x, record=())

    def sim_exact() -> None:
        exact.run(x, record=())

    def torch_model() -> None:
        with torch.no_grad():
            model.encode_video(x)

    fns = {"sim": sim, "sim64": sim_exact, "torch": torch_model}
    t = interleaved_median_s(fns, warmup, repeats)
    equal = torch.equal(split.encode_video(x), model.encode_video(x).detach())
    nodes = len(ex.graph.nodes)
    return {"steps": steps, "nodes": nodes, "equal": equal, **t}


def _chain(cfg, x: torch.Tensor) -> nn.Sequential:
    """Conv-LIF layers with FSVE tiny's stem and stage shapes, each scaled on ``x`` to fire."""
    from spikingjelly.activation_based import functional, layer, neuron

    layers, c_in = [], cfg.block_frames
    for i, c_out in enumerate((cfg.stem_width, *cfg.widths)):
        stride = 1 if i == 1 else 2
        layers += [layer.Conv2d(c_in, c_out, 3, stride, 1), neuron.LIFNode(tau=2.0)]
        c_in = c_out
    net = nn.Sequential(*layers)
    functional.set_step_mode(net, "m")
    h = x
    with torch.no_grad():
        for m in net:
            h = m(h)
            if isinstance(m, nn.Conv2d):  # top 10% of the currents reach 3 V_th
                scale = 3.0 / float(torch.quantile(h.flatten()[::7], 0.9).clamp_min(1e-3))
                m.weight.mul_(scale)
                m.bias.mul_(scale)
                h = h * scale
            else:
                functional.reset_net(m)
    functional.reset_net(net)
    return net.eval()


def bench_chain(batch: int, warmup: int, repeats: int) -> dict:
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    cfg = fsve_config("tiny")
    torch.manual_seed(0)
    x = _clips(cfg, batch).transpose(0, 1).float()  # [T, B, F, H, W]
    net = _chain(cfg, x)
    graph = to_nir(net, x[:, :2]).graph
    ours = Simulator(graph)
    theirs = import_from_nir(graph, step_mode="m")
    out = {}

    def sim() -> None:
        out["ours"] = ours.run(x, record=["output"])["output"]

    def sj() -> None:
        with torch.no_grad():
            out["sj"], _ = theirs(x)

    t = interleaved_median_s({"sim": sim, "sj": sj}, warmup, repeats)
    return {"steps": x.shape[0], "equal": torch.equal(out["ours"], out["sj"]),
            "spikes": int(out["ours"].sum()), **t}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, default=None, help="FSVE checkpoint (default:"
                   " untrained tiny, calibrated)")  # fmt: skip
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"CPU, {args.threads} thread(s), batch {args.batch}, median of {args.repeats}")
    r = bench_fsve(args.checkpoint, args.batch, args.warmup, args.repeats)
    sps = lambda s: r["steps"] / s  # noqa: E731
    print(f"FSVE tiny exported ({r['nodes']} NIR nodes, T = {r['steps']}); embeddings equal to"
          f" the model's: {r['equal']}")  # fmt: skip
    print(f"  export.sim + host   {r['sim'] * 1e3:9.1f} ms/batch  {sps(r['sim']):8.2f} steps/s"
          f"  {sps(r['sim']) * args.batch:9.1f} sample-steps/s")  # fmt: skip
    print(f"  + float64 sums      {r['sim64'] * 1e3:9.1f} ms/batch  {sps(r['sim64']):8.2f} steps/s"
          f"  {sps(r['sim64']) * args.batch:9.1f} sample-steps/s")  # fmt: skip
    print(f"  PyTorch model       {r['torch'] * 1e3:9.1f} ms/batch  {sps(r['torch']):8.2f} steps/s"
          f"  {sps(r['torch']) * args.batch:9.1f} sample-steps/s")  # fmt: skip
    c = bench_chain(args.batch, args.warmup, args.repeats)
    sps = lambda s: c["steps"] / s  # noqa: E731
    print(f"conv-LIF chain, FSVE tiny shapes (T = {c['steps']}); same spikes: {c['equal']}"
          f" ({c['spikes']} output spikes)")  # fmt: skip
    print(f"  export.sim          {c['sim'] * 1e3:9.1f} ms/batch  {sps(c['sim']):8.2f} steps/s")
    print(f"  SpikingJelly import {c['sj'] * 1e3:9.1f} ms/batch  {sps(c['sj']):8.2f} steps/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
