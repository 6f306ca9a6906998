"""DCGAN on MNIST (Radford et al. 2016): transposed-conv G with BatchNorm, 5x5 strided-conv D with dropout.

G: Dense 7x7x128 -> BN ReLU -> ConvT 64 5x5 s2 (14x14) -> BN ReLU -> ConvT 1 5x5 s2 (28x28) tanh
(half the widths of the usual 256/128: transposed convolutions are slow on XLA:CPU).
D: Conv 64 5x5 s2 -> LeakyReLU 0.2 -> dropout 0.3 -> Conv 128 5x5 s2 -> LeakyReLU 0.2 -> dropout 0.3 -> Dense 1.
Everything else as the tutorial (BCE, Adam(2e-4, 0.5), batch 64, two D updates per step).
For 32x32 colour images (a TFDS dataset such as cifar10): data.image_shape=(32, 32, 3),
model.g_features=(256, 128, 64), model.d_features=(64, 128, 256).

Launch:
  python -m ganjax.main --config=experiments/mnist_dcgan.py --workdir=runs/mnist_dcgan
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'tutorial_gan')
  config.model.g_arch = 'dcgan'
  config.model.g_features = (128, 64)
  config.model.g_bn_momentum = 0.9
  config.model.d_arch = 'dcgan'
  config.model.d_features = (64, 128)
  config.model.d_dropout = 0.3
  return config
