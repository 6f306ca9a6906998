"""`mnist_mlp_bn.py` (BatchNorm in G, minibatch std in D) with the hinge loss and an EMA of G for samples.

The EMA (decay 0.999) is what the sample grids and the evaluation use.

Launch:
  python -m ganjax.main --config=experiments/mnist_hinge_ema.py --workdir=runs/mnist_hinge_ema
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'mnist_mlp_bn')
  config.loss.name = 'hinge'
  config.train.g_ema_decay = 0.999
  return config
