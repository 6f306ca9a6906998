"""`images_sngan.py` on CIFAR-10's 50,000 training images from a prepared TFDS folder, as in mimicry.

  python -m ganjax.main --config=experiments/cifar10_sngan.py --config.data.dir=~/tensorflow_datasets \
    --workdir=runs/cifar10_sngan

Prepare it once with `tfds build cifar10 --file_format=array_record` (TFDS needs TensorFlow to
prepare it, here or on another machine); ganjax reads the prepared files through
`tfds.data_source`, without TensorFlow. `--config.data.tfds_download=True` lets TFDS download and
prepare it at the start of the run.
"""

from ganjax.config import sibling


def get_config():
  config = sibling(__file__, 'images_sngan')
  config.data.source = 'tfds'
  config.data.tfds_name = 'cifar10'
  config.data.split = 'train'
  config.data.image_shape = (32, 32, 3)
  return config
