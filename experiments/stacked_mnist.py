"""Stacked MNIST (1,000 modes) with the DCGAN of PacGAN's Table 2, scaled to a 2-core CPU.

Data: 128,000 stacks of three shipped digits as R, G, B (28x28x3; `ganjax.stacked_mnist`).
G: Dense 7x7x128 -> BN ReLU -> ConvT 64 5x5 s2 -> BN ReLU -> ConvT 3 5x5 s2 -> tanh.
D: Conv 64 5x5 s2 -> LeakyReLU 0.2 -> Conv 128 5x5 s2 -> BN -> LeakyReLU 0.2 -> minibatch std -> Dense 1.
BCE, batch 64, trained with the default's recipe (`mnist_gan.py`) instead of PacGAN's Adam(2e-4, 0.5):
one joint D update then one G update a step, Adam(1e-3, b1=0.5, b2=0.99) decaying linearly to 0, and
samples and evaluation from an EMA of G (0.999). PacGAN trained 100,000 steps; this budget has 6,000.

Why the minibatch-std feature: the KL to uniform here is almost all uneven digit frequencies per
channel (docs/evaluation.md), and the feature lets D see a batch's spread. One seed of the packed
config, the rest of the recipe alike, at 3,000 and 6,000 steps: KL 0.26 and 0.18 without it, 0.10 and
0.11 with it (anecdotes; the README's table has 3 seeds).

The periodic evaluation reads each channel with ganjax's MNIST classifier: `eval/modes` (of 1,000) and
`eval/kl_modes` (KL of the mode histogram to uniform) from 26,000 samples, PacGAN's protocol;
`benchmarks/stacked_table.py` runs this config for the README's table.

Launch:
  python -m ganjax.main --config=experiments/stacked_mnist.py --workdir=runs/stacked_mnist
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'tutorial_gan')
  config.data.source = 'stacked_mnist'
  config.data.image_shape = (28, 28, 3)
  config.model.g_arch = 'dcgan'
  config.model.g_features = (128, 64)
  config.model.g_bn_momentum = 0.9
  config.model.d_arch = 'dcgan'
  config.model.d_features = (64, 128)
  config.model.d_norm = 'batch'
  config.model.d_minibatch_std = True
  config.opt.g_lr = config.opt.d_lr = 1e-3
  config.opt.b2 = 0.99
  config.opt.schedule = 'linear'
  config.train.d_update = 'joint'
  config.train.g_ema_decay = 0.999
  config.train.num_steps = 6000
  config.train.sample_every_steps = 1000
  config.eval.every_steps = 1000
  config.eval.num_samples = 26_000
  config.checkpoint.every_steps = 1000
  return config
