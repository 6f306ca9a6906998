"""The tutorial GAN exactly, mode collapse included.

MLP generator (100 -> 256 -> 512 -> 1024 -> 784, tanh), strided-conv
discriminator (64, 128, LeakyReLU 0.2, one logit), BCE, Adam(2e-4, b1=0.5)
for both, batch 64, two discriminator updates per step (real, then fake),
then one generator update through the frozen discriminator.

On MNIST this model collapses to a single digit within a few thousand steps;
the `eval/classes_covered` and `eval/pixel_std` curves show when.

Launch:
  python -m ganjax.main --config=experiments/tutorial_gan.py --workdir=runs/tutorial_gan
"""

from ganjax.config import tutorial_config


def get_config():
  return tutorial_config()
