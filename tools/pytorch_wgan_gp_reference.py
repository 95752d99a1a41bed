#!/usr/bin/env python3
"""PyTorch timing of the WGAN-GP iterations that //nn:networks_bench times in otgen.

The issues' speed targets are stated against "PyTorch 1.13 CPU on this machine". This script
runs the same workloads in PyTorch so the comparison can be redone on whatever machine the
project runs on (Debian bookworm: `apt-get install --no-install-recommends python3-torch`
gives PyTorch 1.13 built with oneDNN 2.6, the same oneDNN otgen uses):

  /usr/bin/python3 tools/pytorch_wgan_gp_reference.py [--threads=2] [--seconds=10]

One iteration is one generator iteration as in nn/networks_bench.cc: 5 critic steps (real
and fake batches, gradient penalty lambda 10 at random interpolates through
torch.autograd.grad(create_graph=True), Adam(1e-4, 0.5, 0.9)) and 1 generator step.
  toy    G = MLP 2-512-512-512-2, D = MLP 2-512-512-512-1 (ReLU), batch 256, 8 Gaussians.
  dcgan  critic Conv(1,64,5,2,2)-LReLU-Conv(64,128,5,2,2)-LReLU-Conv(128,256,5,2,2)-LReLU
         -Flatten-Linear(4096,1); generator Linear(128,4096)-BN-ReLU-[256,4,4]
         -ConvT(256,128,5,2,2)-BN-ReLU-ConvT(128,64,5,2,2,op 1)-BN-ReLU-ConvT(64,1,5,2,2,op 1)
         -Tanh; batch 64, uniform noise images as real data.
Each runs in float32 and under torch.autocast("cpu", dtype=torch.bfloat16) (PyTorch's mixed
precision, the counterpart of otgen's --precision=bf16). Prints milliseconds per iteration:
the median of timed iterations after two warm-up iterations.
"""

import argparse
import math
import statistics
import time

import torch
from torch import nn


def toy():
    def mlp(out):
        return nn.Sequential(nn.Linear(2, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                             nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, out))

    def real():
        angles = torch.randint(0, 8, (256,)).float() * (2 * math.pi / 8)
        centers = torch.stack([2 * torch.cos(angles), 2 * torch.sin(angles)], dim=1)
        return centers + 0.02 * torch.randn(256, 2)

    return mlp(2), mlp(1), 256, 2, real


def dcgan():
    d = nn.Sequential(nn.Conv2d(1, 64, 5, 2, 2), nn.LeakyReLU(0.2), nn.Conv2d(64, 128, 5, 2, 2),
                      nn.LeakyReLU(0.2), nn.Conv2d(128, 256, 5, 2, 2), nn.LeakyReLU(0.2), nn.Flatten(),
                      nn.Linear(4096, 1))
    g = nn.Sequential(nn.Linear(128, 4096), nn.BatchNorm1d(4096), nn.ReLU(), nn.Unflatten(1, (256, 4, 4)),
                      nn.ConvTranspose2d(256, 128, 5, 2, 2), nn.BatchNorm2d(128), nn.ReLU(),
                      nn.ConvTranspose2d(128, 64, 5, 2, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
                      nn.ConvTranspose2d(64, 1, 5, 2, 2, 1), nn.Tanh())
    return g, d, 64, 128, lambda: torch.rand(64, 1, 28, 28) * 2 - 1


def make_iteration(g, d, batch, latent, real, bf16):
    g_opt = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.5, 0.9))
    d_opt = torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.5, 0.9))

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)

    def critic_step():
        x = real()
        with torch.no_grad(), autocast():
            fake = g(torch.randn(batch, latent)).float()
        with autocast():
            d_real = d(x).float()
            d_fake = d(fake).float()
        alpha = torch.rand([batch] + [1] * (x.dim() - 1))
        x_hat = (alpha * x + (1 - alpha) * fake).requires_grad_(True)
        with autocast():
            d_hat = d(x_hat).float()
        grad, = torch.autograd.grad(d_hat.sum(), x_hat, create_graph=True)
        penalty = ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
        loss = d_fake.mean() - d_real.mean() + 10 * penalty
        d_opt.zero_grad(set_to_none=True)
        loss.backward()
        d_opt.step()

    def generator_step():
        with autocast():
            loss = -d(g(torch.randn(batch, latent))).float().mean()
        g_opt.zero_grad(set_to_none=True)
        loss.backward()
        g_opt.step()

    def iteration():
        for _ in range(5):
            critic_step()
        generator_step()

    return iteration


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per workload")
    parser.add_argument("--workloads", default="toy,dcgan")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"mkldnn {torch.backends.mkldnn.is_available()}")
    for name in args.workloads.split(","):
        for bf16 in (False, True):
            g, d, batch, latent, real = {"toy": toy, "dcgan": dcgan}[name]()
            iteration = make_iteration(g, d, batch, latent, real, bf16)
            for _ in range(2):
                iteration()
            times = []
            start = time.perf_counter()
            while time.perf_counter() - start < args.seconds or len(times) < 3:
                t = time.perf_counter()
                iteration()
                times.append(time.perf_counter() - t)
            print(f"{name:6s} {'bf16' if bf16 else 'float32':8s} {1e3 * statistics.median(times):8.1f} ms "
                  f"per iteration ({len(times)} iterations)")


if __name__ == "__main__":
    main()
