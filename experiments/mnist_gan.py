"""The default: the tutorial's networks with the smallest change that keeps all ten digits.

PLACEHOLDER until the collapse experiments finish.

Launch:
  python -m ganjax.main --config=experiments/mnist_gan.py --workdir=runs/mnist_gan
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'tutorial_gan')
  return config
