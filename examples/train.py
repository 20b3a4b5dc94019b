"""A small numpy training loop: fit a (polynomial) linear model by gradient descent.

Tracked, from the repository root (parameters composed from conf/):
    yanex run examples/train.py --param model=poly --param optimizer.lr=0.05
Plain (same code, nothing tracked):
    python examples/train.py
"""

import numpy as np

import yanex

degree = yanex.get_param("model.degree", 1)
weight_decay = yanex.get_param("model.weight_decay", 0.0)
lr = yanex.get_param("optimizer.lr", 0.1)
momentum = yanex.get_param("optimizer.momentum", 0.0)
epochs = yanex.get_param("training.epochs", 20)
n_samples = yanex.get_param("data.n_samples", 200)
noise = yanex.get_param("data.noise", 0.1)
seed = yanex.get_param("data.seed", 0)
n_folds = yanex.get_param("data.n_folds", 5)
fold = yanex.get_param("data.fold", None)

rng = np.random.default_rng(seed)
inputs = rng.normal(size=(n_samples, 3))
targets = inputs @ np.array([1.5, -2.0, 0.5]) + 0.3 * inputs[:, 0] ** 2
targets += noise * rng.normal(size=n_samples)
features = np.hstack([inputs**d for d in range(1, degree + 1)])

# Hold out one fold for validation when a fold is given (k-fold cross-validation).
held_out = np.zeros(n_samples, dtype=bool)
if fold is not None:
    held_out[np.arange(n_samples) % n_folds == fold] = True
train_x, train_y = features[~held_out], targets[~held_out]
val_x, val_y = (features[held_out], targets[held_out]) if fold is not None else (train_x, train_y)

weights = np.zeros(features.shape[1])
velocity = np.zeros_like(weights)
for epoch in range(epochs):
    gradient = 2 * train_x.T @ (train_x @ weights - train_y) / len(train_y)
    velocity = momentum * velocity - lr * (gradient + 2 * weight_decay * weights)
    weights += velocity
    loss = float(np.mean((train_x @ weights - train_y) ** 2))
    val_loss = float(np.mean((val_x @ weights - val_y) ** 2))
    yanex.log_results({"epoch": epoch, "loss": loss, "val_loss": val_loss})
    print(f"epoch {epoch:3d}  loss {loss:.4f}  val_loss {val_loss:.4f}")

yanex.save_artifact(weights, "weights.npy")
yanex.save_artifact({"weights": weights.tolist(), "final_val_loss": val_loss}, "summary.json")
print(f"final val_loss {val_loss:.4f}")
