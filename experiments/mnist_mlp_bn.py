"""The tutorial's networks with the smallest change found that keeps (nearly) all ten digits.

This was ganjax's default until a conv generator replaced it (`mnist_gan.py`); it stays as the
minimal fix of the tutorial and as the base of the MLP research variants. Two changes from
`tutorial_gan.py`, everything else identical (widths, BCE, Adam(2e-4, b1=0.5), batch 64, two D
updates per step, frozen-D G update):

- BatchNorm (momentum 0.8, as in the Keras-GAN family) after each hidden Dense layer of G: without
  it G starts with almost no variation across z and D's gradient moves every sample the same way.
- A minibatch standard-deviation channel before D's Dense layer (Karras et al. 2018): D sees whether
  a batch of fakes is near-identical, so collapse is penalised.

It keeps the classes but not the variety (a few templates per digit, recall near 0); docs/results.md's
quality and comparison tables measure it.

Launch:
  python -m ganjax.main --config=experiments/mnist_mlp_bn.py --workdir=runs/mnist_mlp_bn
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'tutorial_gan')
  config.model.g_norm = 'batch'
  config.model.g_bn_momentum = 0.8
  config.model.d_minibatch_std = True
  return config
