"""Robustness studies of noisy classifiers: accuracy under noise
(:mod:`.accuracy`), layer-by-layer "walking" noise (:mod:`.walking`),
noise-aware training (:mod:`.noise_training`, training in :mod:`.training`,
PyTorch) and parameter sweeps (:mod:`.sweeps`).

Submodules are imported on use: ``import noiseprop.studies.walking``.
"""
