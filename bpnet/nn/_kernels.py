"""The unchecked L-layer passes with the course's caches (``xp`` passed in).

The checked functions of :mod:`bpnet.nn.course` call these once their inputs
are validated, and so do the tools and the model's inference.  Examples are
columns: ``X`` is ``(n_x, m)``, ``W[l]`` ``(n_l, n_{l-1})``, ``b[l]`` ``(n_l, 1)``.
"""

from __future__ import annotations

__all__ = ["forward", "backward", "affine_backward", "decide"]


def forward(xp, X, parameters, L, hidden, output, masks=None):
    """``A[L]`` and the caches ``[((A_prev, W, b), Z), ...]`` of all L layers.

    ``masks`` (inverted dropout): None or a list of L-1 arrays ``(n_l, m)``
    holding 0 or ``1/keep_prob``; hidden activations become ``A[l] = g(Z[l]) * M[l]``.
    """
    caches = []
    A = X
    for l in range(1, L + 1):
        W, b = parameters[f"W{l}"], parameters[f"b{l}"]
        Z = W @ A + b  # Z[l] = W[l] A[l-1] + b[l]
        caches.append(((A, W, b), Z))
        if l < L:
            A = hidden.forward(xp, Z)  # A[l] = g[l](Z[l])
            if masks is not None:
                A = A * masks[l - 1]  # inverted dropout: A[l] = A[l] * D[l] / keep_prob
        else:
            A = output.forward(xp, Z)
    return A, caches


def backward(xp, AL, Y, caches, hidden, output, loss, *, fused, need_dA0=True, masks=None, at_z=True):
    """``grads`` with keys dA0..dA{L-1}, dW1..dWL, db1..dbL.

    ``fused`` starts from ``dZ[L] = A[L] - Y``; otherwise from the loss's
    ``dA[L]`` through the output's derivative.  ``need_dA0=False`` skips
    ``dA0 = W[1]^T dZ[1]``.  ``masks``: the dropout masks of the forward pass.
    As the course's ``relu_backward(dA, Z)`` etc., each ``g'`` is taken at the
    cached ``Z`` (``g(Z)`` recomputed), so caches not from a forward pass (the
    course's own tests build them from ``randn``) give the course's numbers;
    ``at_z=False`` takes it from the cached activations instead, as the week-3
    notebook's ``dZ1 = W2^T dZ2 * (1 - A1^2)`` does.
    """
    grads = {}
    L = len(caches)
    dA = None
    for l in range(L, 0, -1):
        (A_prev, W, b), Z = caches[l - 1]
        if l == L:
            if fused:
                dZ = AL - Y  # dZ[L] = A[L] - Y
            else:  # dZ[L] = dA[L] * g'(Z[L]), with dA[L] from the loss at the given AL
                dZ = output.backward(xp, loss.grad(xp, AL, Y), output.forward(xp, Z) if at_z else AL)
        else:
            if masks is not None:
                dA = dA * masks[l - 1]  # dropout backward: dA[l] = dA[l] * D[l] / keep_prob
            # g(Z[l]); the next layer's cached A_prev is it, unless masked by dropout
            A = hidden.forward(xp, Z) if at_z or masks is not None else caches[l][0][0]
            dZ = hidden.backward(xp, dA, A)  # dZ[l] = dA[l] * g'(Z[l]); dA is kept for grads
        dA, grads[f"dW{l}"], grads[f"db{l}"] = affine_backward(xp, dZ, A_prev, W, need_dA=l > 1 or need_dA0)
        if dA is not None:
            grads[f"dA{l - 1}"] = dA
    return grads


def affine_backward(xp, dZ, A_prev, W, *, need_dA=True):
    """``(dA_prev, dW, db)`` of ``Z = W A_prev + b``; ``dA_prev`` is None unless ``need_dA``."""
    m = A_prev.shape[1]
    dW = (dZ @ A_prev.T) / m  # dW = dZ A_prev^T / m
    db = xp.sum(dZ, axis=1, keepdims=True) / m  # db = sum_i dZ / m
    return (W.T @ dZ if need_dA else None), dW, db  # dA_prev = W^T dZ


def decide(xp, AL, output, threshold=0.5):
    """The course's predictions from ``A[L]``: 0/1 for sigmoid, class indices ``(1, m)`` for softmax, else AL."""
    if output.name == "sigmoid":
        return xp.astype(AL > threshold, AL.dtype)
    if output.name == "softmax":
        return xp.argmax(AL, axis=0, keepdims=True)
    return AL
