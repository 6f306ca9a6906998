"""PacDCGAN2 on Stacked MNIST (Lin et al. 2018): `stacked_mnist.py` with D judging packs of 2 samples.

D's first convolution sees the two samples' 6 channels. As in PacGAN's code, the batch counts packs:
64 packs of 2, so G draws 128 samples a step and D sees as many packs as the plain DCGAN sees
samples. (With 32 packs, G's 64 samples a step, the KL after 6,000 steps was 0.20 +- 0.03 over 3
seeds against 0.17 +- 0.03 with 64.) Everything else (steps, optimiser, evaluation) as
`stacked_mnist.py`: the comparison of PacGAN's Table 2.

Launch:
  python -m ganjax.main --config=experiments/stacked_mnist_pac.py --workdir=runs/stacked_mnist_pac
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'stacked_mnist')
  config.model.d_pack = 2
  config.train.batch_size = 128  # 64 packs of 2
  return config
