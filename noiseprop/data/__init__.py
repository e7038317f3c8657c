"""Package data: files read with NumPy alone, shipped in every install.

- ``default_network.npz``: the trained digits network of
  :func:`noiseprop.default_network` (made by ``generate_default_network.py``).
- ``digits.npz``: the 8x8 handwritten digits read by
  :func:`noiseprop.io.datasets.load_digits` (made by ``generate_digits.py``
  from scikit-learn's bundled copy; BSD 3-clause license, see that script).

The generator scripts are kept beside the files they made; they are not
imported by the package.
"""
