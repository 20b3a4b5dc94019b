"""An existing Hydra app, unchanged: fit a curve by gradient descent, in plain Python.

As Hydra runs it (its config composed from conf/, overrides on the command line):
    python examples/hydra_app/app.py model=quadratic optimizer.lr=0.05
As yanex runs it (the same overrides; the run is tracked, staged or swept):
    yanex run examples/hydra_app/app.py model=quadratic optimizer.lr=0.05
    yanex run examples/hydra_app/app.py model=linear,quadratic optimizer.lr=0.01,0.05 -m
"""

import random

import hydra
from omegaconf import DictConfig

import yanex


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    rng = random.Random(cfg.data.seed)
    xs = [rng.uniform(-1, 1) for _ in range(cfg.data.n_samples)]
    ys = [0.5 + 2.0 * x - 1.5 * x**2 + rng.gauss(0, cfg.data.noise) for x in xs]
    weights = [0.0] * (cfg.model.degree + 1)
    velocity = [0.0] * len(weights)
    for epoch in range(cfg.training.epochs):
        grads = [0.0] * len(weights)
        loss = 0.0
        for x, y in zip(xs, ys, strict=True):
            error = sum(w * x**d for d, w in enumerate(weights)) - y
            loss += error**2 / len(xs)
            for d in range(len(weights)):
                grads[d] += 2 * error * x**d / len(xs)
        for d in range(len(weights)):
            velocity[d] = cfg.optimizer.momentum * velocity[d] - cfg.optimizer.lr * grads[d]
            weights[d] += velocity[d]
        yanex.log_results({"epoch": epoch, "loss": loss})  # a no-op outside yanex
    print(f"{cfg.model.name}: loss {loss:.4f} after {cfg.training.epochs} epochs")
    return loss


if __name__ == "__main__":
    main()
