"""The Dirac-GAN's (theta, psi) trajectories under each update rule, with and without R1: docs/dynamics.md's figure.

  python benchmarks/dirac_figure.py [--out runs/dirac] [--steps 500] [--gamma 0.3]

Trains `experiments/dirac_gan.py` (BCE, SGD at 0.1, from (1, 1)) through `ganjax.main` once per
update rule, plus consensus optimisation, each without and with R1 (weight --gamma), reads
dirac/theta and dirac/psi back from each run's metrics.jsonl, draws docs/dynamics/dirac.png and
prints each run's final distance to the equilibrium (0, 0).
"""

import argparse
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
RULES = {
  'simultaneous': ('--config.train.update_rule=simultaneous',),
  'alternating': ('--config.train.update_rule=alternating',),
  'extragradient': ('--config.train.update_rule=extragradient',),
  'optimistic': ('--config.train.update_rule=optimistic',),
  'consensus (0.3)': ('--config.train.update_rule=simultaneous', '--config.loss.consensus_weight=0.3'),
}


def trajectory(workdir: pathlib.Path, flags: tuple[str, ...], steps: int) -> list[tuple[float, float]]:
  args = ['--config=experiments/dirac_gan.py', f'--workdir={workdir}', f'--config.train.num_steps={steps}', *flags]
  args.append('--config.checkpoint.resume=False')
  proc = subprocess.run([sys.executable, '-m', 'ganjax.main', *args], cwd=ROOT, capture_output=True, text=True)
  if proc.returncode:
    raise SystemExit(f'{" ".join(args)} failed: {proc.stderr.strip()[-500:]}')
  records = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  return [(1.0, 1.0)] + [(r['dirac/theta'], r['dirac/psi']) for r in records if 'dirac/theta' in r]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default='runs/dirac', help='folder of the runs')
  parser.add_argument('--steps', type=int, default=500)
  parser.add_argument('--gamma', type=float, default=0.3, help='R1 weight of the right panel')
  args = parser.parse_args()
  out = (ROOT / args.out).resolve()
  from matplotlib.figure import Figure

  fig = Figure(figsize=(11, 5))
  panels = fig.subplots(1, 2, sharex=True, sharey=True)
  for ax, gamma in zip(panels, (0.0, args.gamma), strict=True):
    for name, flags in RULES.items():
      tag = f'{name.split()[0]}_r1_{gamma}'
      path = trajectory(out / tag, (*flags, f'--config.loss.r1_weight={gamma}'), args.steps)
      theta, psi = zip(*path, strict=True)
      ax.plot(theta, psi, lw=1, label=name)
      final = (theta[-1] ** 2 + psi[-1] ** 2) ** 0.5
      print(f'{name:18s} R1 {gamma:<4} final distance to (0, 0) after {args.steps} steps: {final:.4f}')
    ax.scatter([1.0], [1.0], c='black', s=15, zorder=3, label='start (1, 1)')
    ax.scatter([0.0], [0.0], c='red', marker='x', s=40, zorder=3, label='equilibrium')
    ax.set_title(f'Dirac-GAN, BCE, SGD 0.1, {args.steps} steps, R1 weight {gamma}')
    ax.set_xlabel('theta (G)')
    ax.set_ylabel('psi (D)')
    ax.set_aspect('equal')
  panels[0].legend(fontsize=8, loc='lower left')
  fig.tight_layout()
  target = ROOT / 'docs' / 'dynamics' / 'dirac.png'
  target.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(target, dpi=90)
  print(f'wrote {target.relative_to(ROOT)}')


if __name__ == '__main__':
  main()
