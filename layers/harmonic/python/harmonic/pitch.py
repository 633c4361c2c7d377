"""STUB."""


def f0(*a, **k):
    raise NotImplementedError


hnr = f0
