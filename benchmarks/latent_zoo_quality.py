"""Quality of the bundled latent flow model `digits-sd3` at several guidance scales.

    python benchmarks/latent_zoo_quality.py [--samples 500] [--nfe 40]

Samples it with UniPC-3 on a Karras grid (seed `s` draws the prompt `str(s % 10)`), decodes with
its VAE, and prints for each guidance scale (none, 1.5, 2, 4): the fraction the shipped digits
classifier assigns to the prompted digit, its mean confidence, and FD-digits.
"""

from __future__ import annotations

import argparse

import torch

import s4s
from s4s import metrics, zoo
from s4s.noise import seeded_noise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--nfe", type=int, default=40)
    args = parser.parse_args()
    print("| guidance | classified as prompted | mean confidence | FD-digits |\n|---|---|---|---|")
    for scale in (None, 1.5, 2.0, 4.0):
        model = zoo.load("digits-sd3", guidance=scale)
        seeds = list(range(args.samples))
        noise = seeded_noise(seeds, model.sample_shape)
        with torch.no_grad():
            x = s4s.make_solver("unipc", args.nfe, "karras", model).sample(model, noise, model.conditions(seeds))
            images = model.decode(x)
        p = metrics.classify_digits(images)
        hit = float((p.argmax(1) == torch.tensor(seeds) % 10).float().mean())
        print(f"| {'none' if scale is None else f'{scale:g}'} | {hit:.3f} | {float(p.max(1).values.mean()):.3f} | "
              f"{metrics.fd_digits(images):.2f} |")


if __name__ == "__main__":
    main()
