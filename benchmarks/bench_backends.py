"""bpnet on PyTorch and on JAX against the same training step written natively in each library.

On the four reference nets of ``benchmarks/bench.py`` (same problems, He-initialised, plain
gradient descent, lr 0.01, ReLU hidden layers, softmax or sigmoid output), timed side by side in
interleaved blocks (``bench.interleaved``), BLAS / torch / XLA threads pinned:

* ``bpnet-torch``: bpnet's training step (``bpnet.train.step.train_step``) on torch tensors (eager,
  in place) — against ``torch-autograd`` (``nn.Linear`` layers, ``CrossEntropyLoss`` /
  ``BCEWithLogitsLoss``, ``loss.backward()``, ``torch.optim.SGD``: how PyTorch users write a step) and
  ``torch-manual`` (the course equations hand-written in torch, no autograd: the same work as bpnet's);
* ``bpnet-jax``: bpnet's step on jax arrays, which bpnet runs as one ``jax.jit``-compiled call —
  against ``jax-jit`` (``jax.grad`` of the same loss and the SGD update, in one ``jax.jit``).

Memory: each implementation runs in a fresh subprocess; the figure is the growth of the peak resident
set size over a few steps, from when the data and parameters exist (the step's working memory plus
what its first call compiles or caches), next to the theoretical bytes of bench.py (parameters,
gradients, activations, labels).

    python benchmarks/bench_backends.py                 # all four nets, float32, CPU
    python benchmarks/bench_backends.py --quick --nets d --dtypes float32,float64
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import bench  # noqa: E402  (the reference nets, problems and the interleaved timer)

IMPLS = ("bpnet-torch", "torch-autograd", "torch-manual", "bpnet-jax", "jax-jit")


class BpnetOn(bench.Bpnet):
    """bench.Bpnet on torch or jax; ``sync`` waits for this step's arrays (JAX has no device-wide barrier)."""

    def __init__(self, backend, **kw):
        super().__init__(backend, **kw)
        self.name = f"bpnet-{self.bk.name}"

    def sync(self):
        if self.bk.name == "jax":
            import jax

            jax.block_until_ready((self.ts.Ws, self.ts.bs))
        else:
            self.bk.synchronize()


class TorchManual:
    """The course equations (examples are columns) hand-written in torch, no autograd."""

    name, backend, gpu = "torch-manual", "cpu", False

    def __init__(self, X, Y, params, out, **_):
        import torch

        self.torch = torch
        L = len(params) // 2
        self.Ws = [torch.from_numpy(params[f"W{l}"].copy()) for l in range(1, L + 1)]
        self.bs = [torch.from_numpy(params[f"b{l}"].copy()) for l in range(1, L + 1)]
        self.X, self.Y, self.out = torch.from_numpy(X.copy()), torch.from_numpy(Y.copy()), out

    def step(self):
        with self.torch.no_grad():  # nothing here requires grad; no_grad skips autograd's bookkeeping
            self._step()

    def _step(self):
        torch, Ws, bs, Y = self.torch, self.Ws, self.bs, self.Y
        L, m = len(Ws), Y.shape[1]
        acts = [self.X]
        for l in range(L):
            Z = torch.addmm(bs[l], Ws[l], acts[-1])  # Z = W A + b
            if l < L - 1:
                Z.clamp_(min=0)
            elif self.out == "softmax":
                Z = torch.softmax(Z, dim=0)
            else:
                Z = torch.sigmoid(Z)
            acts.append(Z)
        dZ = (acts[L] - Y) * (bench.LR / m)  # dZ[L] = A - Y, the 1/m and lr folded in once
        for l in range(L - 1, -1, -1):
            A_prev = acts[l]
            dW, db = dZ @ A_prev.T, dZ.sum(dim=1, keepdim=True)
            if l > 0:
                dZ = (Ws[l].T @ dZ) * (A_prev > 0)
            Ws[l] -= dW
            bs[l] -= db

    def sync(self):
        pass


class JaxJit:
    """``jax.grad`` of the mean cross-entropy from the logits and the SGD update, in one ``jax.jit``."""

    name, backend, gpu = "jax-jit", "cpu", False

    def __init__(self, X, Y, params, out, **_):
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        self.jax = jax
        L = len(params) // 2
        self.params = [(jnp.asarray(params[f"W{l}"]), jnp.asarray(params[f"b{l}"])) for l in range(1, L + 1)]
        self.X, self.Y = jnp.asarray(X), jnp.asarray(Y)

        def loss(ps, X, Y):
            A = X
            for W, b in ps[:-1]:
                A = jax.nn.relu(W @ A + b)
            W, b = ps[-1]
            Z = W @ A + b
            if out == "softmax":
                return -jnp.mean(jnp.sum(Y * jax.nn.log_softmax(Z, axis=0), axis=0))
            return jnp.mean(jnp.logaddexp(0.0, Z) - Y * Z)  # BCE from the logits

        @jax.jit
        def step(ps, X, Y):
            grads = jax.grad(loss)(ps, X, Y)
            return [(W - bench.LR * dW, b - bench.LR * db) for (W, b), (dW, db) in zip(ps, grads)]

        self._step = step

    def step(self):
        self.params = self._step(self.params, self.X, self.Y)

    def sync(self):
        self.jax.block_until_ready(self.params)


def make(name, net, dtype):
    spec = bench.NETS[net]
    X, Y, labels, params = bench.make_problem(spec["dims"], spec["m"], spec["out"], dtype)
    kw = dict(X=X, Y=Y, labels=labels, params=params, out=spec["out"], dims=spec["dims"])
    if name == "bpnet-torch":
        return BpnetOn("torch:cpu", **kw)
    if name == "bpnet-jax":
        return BpnetOn("jax:cpu", **kw)
    if name == "torch-autograd":
        im = bench.Torch(**kw)
        im.name = "torch-autograd"
        return im
    if name == "torch-manual":
        return TorchManual(**kw)
    if name == "jax-jit":
        return JaxJit(**kw)
    raise ValueError(f"implementation: expected one of {IMPLS}, got {name!r}")


def pin_threads(n):
    """BLAS, torch and XLA to ``n`` threads; call before torch/jax are first used."""
    os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen={'true' if n > 1 else 'false'} "
                          f"intra_op_parallelism_threads={n}")
    import torch

    torch.set_num_threads(n)
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n)


def memory_child(name, net, dtype, steps, threads):
    """In a fresh process: peak RSS growth (bytes) over ``steps`` steps, from when the data and parameters
    exist (so it includes what the first step compiles or caches: JAX's executable, torch's allocator)."""
    pin_threads(threads)
    im = make(name, net, dtype)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(steps):
        im.step()
    im.sync()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return (after - before) * 1024  # ru_maxrss is in KiB on Linux


def peak_growth(name, net, dtype, steps, threads):
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import bench_backends as b; "
            f"print(b.memory_child({name!r}, {net!r}, {dtype!r}, {steps}, {threads}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: short budgets, no memory runs")
    p.add_argument("--nets", default="a,b,c,d", help="comma-separated subset of bench.py's nets a,b,c,d")
    p.add_argument("--dtypes", default="float32", help="comma-separated: float32, float64")
    p.add_argument("--threads", type=int, default=1, help="BLAS / torch / XLA threads (default 1)")
    p.add_argument("--budget", type=float, default=None, help="seconds of timed steps per (net, dtype)")
    p.add_argument("--no-memory", action="store_true", help="skip the per-implementation memory runs")
    p.add_argument("--memory-only", action="store_true", help="only the memory runs (no timing)")
    p.add_argument("--json", type=Path, help="write the records to this JSON file")
    args = p.parse_args(argv)
    for net in args.nets.split(","):
        if net not in bench.NETS:
            p.error(f"--nets: expected names among {sorted(bench.NETS)}, got {net!r}")
    args.budget = args.budget if args.budget is not None else (0.5 if args.quick else 8.0)
    return args


def main(argv=None):
    args = parse_args(argv)
    limiter = pin_threads(args.threads)
    records = []
    print(f"# bpnet on torch / jax vs native steps, {args.threads} thread(s); step ms (medians of interleaved rounds)")
    print(f"{'net':>3} {'dtype':>7} " + " ".join(f"{n:>14}" for n in IMPLS)
          + f" {'torch/autograd':>14} {'torch/manual':>12} {'jax/jit':>8}")
    for net in args.nets.split(","):
        for dtype in args.dtypes.split(","):
            if args.memory_only:
                spec = bench.NETS[net]
                mem = {n: peak_growth(n, net, dtype, 3, args.threads) for n in IMPLS}
                theo = bench.theoretical_mem(spec["dims"], spec["m"], dtype)
                records.append(dict(net=net, dtype=dtype, peak_growth_bytes=mem, theoretical_mem_bytes=theo))
                grown = ", ".join(f"{n} {mem[n] / 2**20:.1f}" for n in IMPLS)
                print(f"{net:>3} {dtype:>7} peak RSS growth MiB: {grown}; theoretical {theo / 2**20:.1f}")
                continue
            impls = [make(n, net, dtype) for n in IMPLS]
            times, rounds = bench.interleaved(impls, args.budget, 3, 40 if args.quick else 400)
            t = dict(zip(IMPLS, times))
            mem = {n: None if args.no_memory or args.quick else peak_growth(n, net, dtype, 5, args.threads)
                   for n in IMPLS}
            spec = bench.NETS[net]
            rec = dict(net=net, layers="-".join(map(str, spec["dims"])), batch=spec["m"], dtype=dtype,
                       rounds=rounds, step_ms={n: t[n] * 1e3 for n in IMPLS},
                       ratio_bpnet_torch_vs_autograd=t["bpnet-torch"] / t["torch-autograd"],
                       ratio_bpnet_torch_vs_manual=t["bpnet-torch"] / t["torch-manual"],
                       ratio_bpnet_jax_vs_jit=t["bpnet-jax"] / t["jax-jit"],
                       peak_growth_bytes=mem, theoretical_mem_bytes=bench.theoretical_mem(spec["dims"], spec["m"],
                                                                                          dtype))
            records.append(rec)
            print(f"{net:>3} {dtype:>7} " + " ".join(f"{t[n] * 1e3:14.3f}" for n in IMPLS)
                  + f" {rec['ratio_bpnet_torch_vs_autograd']:14.3f} {rec['ratio_bpnet_torch_vs_manual']:12.3f}"
                  f" {rec['ratio_bpnet_jax_vs_jit']:8.3f}")
            if not (args.no_memory or args.quick):
                print("    peak RSS growth MiB: " + ", ".join(f"{n} {mem[n] / 2**20:.1f}" for n in IMPLS)
                      + f"; theoretical {rec['theoretical_mem_bytes'] / 2**20:.1f}")
            del impls
    limiter.restore_original_limits()
    if args.json:
        bench.atomic_write(args.json, lambda f: f.write(json.dumps(dict(records=records), indent=1)), binary=False,
                           argname="--json")
    return records


if __name__ == "__main__":
    main()
