"""Tools over the math: gradient checking, ``explain``, plots."""
