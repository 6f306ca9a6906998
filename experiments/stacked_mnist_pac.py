"""PacDCGAN2 on Stacked MNIST (Lin et al. 2018): `stacked_mnist.py` with D judging packs of 2 samples.

D's first convolution sees the two samples' 6 channels; everything else, the budget included, as
`stacked_mnist.py`, so the difference in `eval/modes` and `eval/kl_modes` is what packing buys.

Launch:
  python -m ganjax.main --config=experiments/stacked_mnist_pac.py --workdir=runs/stacked_mnist_pac
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'stacked_mnist')
  config.model.d_pack = 2
  return config
