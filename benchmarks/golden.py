"""Golden numbers: a few steps of fixed-seed runs, hashed, to show a refactor changed no number.

  python benchmarks/golden.py --out /tmp/golden_before     # before the change
  python benchmarks/golden.py --out /tmp/golden_after --compare /tmp/golden_before

Trains each config in CONFIGS for NUM_STEPS steps (seed 0, logging every step,
one evaluation) and writes its metrics.jsonl and their SHA-256. Compare on the
same machine with the same core count (pin with taskset): XLA:CPU's results
depend on the thread count, so hashes from another machine differ.
"""

import argparse
import hashlib
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
# name: (experiment, extra flags). The tutorial, the default, the MLP fix, the cGAN, a toy, a sweep, the Dirac-GAN.
CONFIGS = {
  'tutorial_gan': ('tutorial_gan', ()),
  'mnist_mlp_bn': ('mnist_mlp_bn', ()),
  'mnist_cgan': ('mnist_cgan', ()),
  'mnist_gan': ('mnist_gan', ()),
  'toy_ring8': ('toy_ring8', ()),
  'sweep': ('tiny', ('--config.sweep.field=seed', '--config.sweep.choices=(0, 1)')),
  'dirac_gan': ('dirac_gan', ()),
}
NUM_STEPS = 30


def run(name: str, out: pathlib.Path) -> str:
  """Trains CONFIGS[name] for NUM_STEPS steps; the SHA-256 of its metrics.jsonl files (every member's)."""
  experiment, extra = CONFIGS[name]
  workdir = out / name
  args = [
    f'--config=experiments/{experiment}.py',
    f'--workdir={workdir}',
    f'--config.train.num_steps={NUM_STEPS}',
    '--config.train.log_every_steps=1',
    f'--config.eval.every_steps={NUM_STEPS}',
    '--config.eval.num_samples=200',
    '--config.train.sample_every_steps=0',
    '--config.checkpoint.enabled=False',
    *extra,
  ]
  subprocess.run([sys.executable, '-m', 'ganjax.main', *args], cwd=ROOT, check=True, capture_output=True)
  digest = hashlib.sha256()
  for path in sorted(workdir.rglob('metrics.jsonl')):
    digest.update(path.read_bytes())
  return digest.hexdigest()


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', required=True, help='folder for the runs and hashes.txt')
  parser.add_argument('--compare', help='an earlier --out to compare the hashes with')
  parser.add_argument('--only', nargs='*', choices=CONFIGS)
  args = parser.parse_args()
  out = pathlib.Path(args.out).resolve()
  out.mkdir(parents=True, exist_ok=True)
  hashes = {name: run(name, out) for name in args.only or CONFIGS}
  (out / 'hashes.txt').write_text(''.join(f'{name} {digest}\n' for name, digest in hashes.items()))
  for name, digest in hashes.items():
    print(f'{name} {digest}')
  if args.compare:
    before = dict(line.split() for line in (pathlib.Path(args.compare) / 'hashes.txt').read_text().splitlines())
    same = all(before.get(name) == digest for name, digest in hashes.items())
    for name, digest in hashes.items():
      print(f'{name}: {"identical" if before.get(name) == digest else "DIFFERENT"}')
    sys.exit(0 if same else 1)


if __name__ == '__main__':
  main()
