"""PacDCGAN2 on Stacked MNIST (Lin et al. 2018): `stacked_mnist.py` with D judging packs of 2 samples.

D's first convolution sees the two samples' 6 channels. The batch counts samples: 32 packs of 2, so G
draws as many samples a step as the plain DCGAN's 64 and the two cost about the same. PacGAN's code
instead gave D as many packs as the DCGAN had samples (64 packs, 128 samples); on this CPU that batch
ran 5.6 steps a second where 64 runs 8.5, and the KL falls with steps. Everything else (steps,
optimiser, evaluation) as `stacked_mnist.py`.

Launch:
  python -m ganjax.main --config=experiments/stacked_mnist_pac.py --workdir=runs/stacked_mnist_pac
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'stacked_mnist')
  config.model.d_pack = 2
  return config
