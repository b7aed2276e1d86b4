# %% [markdown]
# # The course's 4-layer network, on real data
#
# "Building your Deep Neural Network: Step by Step" ends with a 4-layer model,
# [LINEAR -> RELU] x 3 -> LINEAR -> SIGMOID with layer sizes [n_x, 20, 7, 5, 1],
# trained by full-batch gradient descent with learning rate 0.0075.  Here the same
# model learns the Wisconsin breast-cancer data set that ships with scikit-learn
# (569 tumours, 30 features, malignant or benign), so nothing is downloaded.
#
# Run it as a script (`python examples/train_course_4layer.py [PLOT.png]
# [--iterations N] [--backend NAME]`; the plot goes to
# `bpnet-run/course_4layer.png` under the current directory, beside the plots of
# `bpnet train`, unless you name another path) or cell by cell in an editor that
# understands `# %%` cells.  It needs `pip install 'bpnet[sklearn,plot]'`.

# %%
from __future__ import annotations

import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")  # write a PNG, never open a window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import bpnet  # noqa: E402
from bpnet.datasets import load_dataset  # noqa: E402
from bpnet.io.atomic import atomic_write  # noqa: E402

#: where the plot goes unless the command line names a file: beside bpnet train's (its default --out)
DEFAULT_PLOT = os.path.join("bpnet-run", "course_4layer.png")


class Parser(argparse.ArgumentParser):
    """A bad option is one `train_course_4layer.py: error: ...` line (exit status 2), as in `bpnet`."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def positive_int(text):
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return n


def parse_args(argv=None):
    p = Parser(description="Train the course's 4-layer network and plot its cost.")
    p.add_argument("output", nargs="?", default=DEFAULT_PLOT,
                   help=f"where to write the cost plot; missing directories are made (default: {DEFAULT_PLOT})")
    p.add_argument("--iterations", type=positive_int, default=2500, help="gradient-descent iterations (default: 2500)")
    p.add_argument("--backend", default=None,
                   help=f"{', '.join(n for n in bpnet.backends.NAMES if n != 'auto')} or auto "
                   f"(default: ${bpnet.backends.ENV_VAR}, else auto)")
    args = p.parse_args(argv)
    kind = os.path.splitext(args.output)[1].lstrip(".").lower()
    if kind not in Figure().canvas.get_supported_filetypes():  # refused now, not after training
        p.error(f"output: expected a file name ending in .png (or another format matplotlib writes), "
                f"got {args.output!r}")
    if os.path.isdir(args.output):
        p.error(f"output: expected a file name, got the directory {args.output!r}")
    return args


# in a notebook there is no command line: fall back to the defaults
args = parse_args(sys.argv[1:] if __name__ == "__main__" else [])
bk = bpnet.backends.get(args.backend)
print(f"backend: {bk}")

# %% [markdown]
# ## The data
#
# `load_dataset` returns host numpy arrays in the course's layout: **examples are
# columns**, so `X_train` is `(n_x, m) = (30, 455)` and `Y_train` is `(1, 455)` of
# 0/1 labels.  The features are standardised with the training set's mean and
# standard deviation (the course divides pixel values by 255 for the same reason:
# inputs of order 1 keep `Z = W A + b` of order 1 at the start).

# %%
ds = load_dataset("breast_cancer", test_size=0.2, seed=0)
print(f"X_train {ds.X_train.shape}, Y_train {ds.Y_train.shape}, X_test {ds.X_test.shape}")
X_train = bk.asarray(ds.X_train, dtype="float64")
Y_train = bk.asarray(ds.Y_train, dtype="float64")
X_test = bk.asarray(ds.X_test, dtype="float64")

# %% [markdown]
# ## The model
#
# `layers_dims = [n_x, 20, 7, 5, 1]` gives `W1 (20, 30)`, `W2 (7, 20)`, `W3 (5, 7)`,
# `W4 (1, 5)`.  `bpnet explain --dims 30,20,7,5,1 --batch 455` prints every
# equation of one training step with these shapes.
#
# `L_layer_model` is the course's training loop: forward pass, cost
# `J = -(1/m) sum(Y log A4 + (1-Y) log(1-A4))`, backward pass from
# `dZ4 = A4 - Y`, and `W[l] -= alpha dW[l]`, from the application notebook's
# initialisation `randn(n_l, n_{l-1}) / sqrt(n_{l-1})`.

# %%
layers_dims = [ds.n_x, 20, 7, 5, 1]
parameters, costs = bpnet.L_layer_model(
    X_train, Y_train, layers_dims, learning_rate=0.0075, num_iterations=args.iterations,
    print_cost=True, backend=bk,
)

# %% [markdown]
# ## Accuracy
#
# `predict` thresholds the sigmoid output at 0.5; the accuracy is the fraction of
# columns where the prediction equals the label.


# %%
def accuracy(X, y):
    pred = bpnet.backends.to_numpy(bpnet.predict(X, parameters)).reshape(-1)
    return float((pred == y).mean())


train_acc = accuracy(X_train, ds.y_train)
test_acc = accuracy(X_test, ds.y_test)
print(f"train accuracy: {100 * train_acc:.2f}%")
print(f"test accuracy: {100 * test_acc:.2f}%")

# %% [markdown]
# ## The cost curve
#
# `costs` holds J at iterations 0, 100, 200, ..., as the notebook records it.
# Plotted against the iteration it should fall quickly, then flatten.

# %%
every = 100
iterations = [i * every for i in range(len(costs))]
fig, ax = plt.subplots(figsize=(6, 4))
ax.plot(iterations, costs, marker="o", markersize=3)
ax.set_xlabel("iteration")
ax.set_ylabel("cost J")
ax.set_title(f"[{', '.join(map(str, layers_dims))}], learning rate 0.0075 (test accuracy {100 * test_acc:.1f}%)")
fig.tight_layout()
# written atomically (a temporary file beside it, then renamed over it: an interrupted run never leaves a
# half-written plot in place of an earlier one), with the mode a new file gets from the umask
out = os.path.abspath(args.output)
os.makedirs(os.path.dirname(out), exist_ok=True)
atomic_write(out, lambda f: fig.savefig(f, format=os.path.splitext(out)[1].lstrip(".").lower()))
plt.close(fig)
print(f"cost plot: {out}")
