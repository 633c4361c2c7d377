"""STUB."""


def stft_power(*a, **k):
    raise NotImplementedError


melspectrogram = power_to_db = mfcc = chroma = spectral_centroid = spectral_flatness = stft_power
