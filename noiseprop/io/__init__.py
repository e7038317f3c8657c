"""Reading and writing: network files and importers (:mod:`.networks`: .npz,
PyTorch, ONNX, scikit-learn), data sets (:mod:`.datasets`) and the networks
shipped with the package (:mod:`.builtin`).

Submodules are imported on use: ``import noiseprop.io.networks``.
"""
