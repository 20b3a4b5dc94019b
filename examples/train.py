"""A small numpy training loop: fit a linear model by gradient descent.

Run it tracked:     yanex run examples/train.py --config conf/config.yaml --param model.lr=0.05
or plain:           python examples/train.py        (same code; nothing is tracked)
"""

import numpy as np

import yanex

lr = yanex.get_param("model.lr", 0.1)
weight_decay = yanex.get_param("model.weight_decay", 0.0)
epochs = yanex.get_param("training.epochs", 20)
n_samples = yanex.get_param("data.n_samples", 200)
noise = yanex.get_param("data.noise", 0.1)
seed = yanex.get_param("data.seed", 0)

rng = np.random.default_rng(seed)
true_weights = np.array([1.5, -2.0, 0.5])
features = rng.normal(size=(n_samples, true_weights.size))
targets = features @ true_weights + noise * rng.normal(size=n_samples)

weights = np.zeros_like(true_weights)
loss = float("nan")
for epoch in range(epochs):
    residual = features @ weights - targets
    gradient = 2 * features.T @ residual / n_samples + 2 * weight_decay * weights
    weights -= lr * gradient
    loss = float(np.mean((features @ weights - targets) ** 2))
    yanex.log_results({"epoch": epoch, "loss": loss})
    print(f"epoch {epoch:3d}  loss {loss:.4f}")

yanex.save_artifact(weights, "weights.npy")
yanex.save_artifact({"weights": weights.tolist(), "final_loss": loss}, "summary.json")
print(f"final loss {loss:.4f}, weights {np.round(weights, 3).tolist()}")
