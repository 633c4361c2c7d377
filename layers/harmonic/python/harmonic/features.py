"""STUB."""


def extract_features(*a, **k):
    raise NotImplementedError
