"""Stacked MNIST over 3 seeds against PacGAN's Table 2: the stacked blocks of README.md and docs/evaluation.md.

  python benchmarks/stacked_table.py [--readme | --docs] [--out runs/stacked] [--rows pac,dcgan] [--skip-training]

Without --rows, the README's rows (README_ROWS); the others are earlier recipes and the small-D variants.
--readme writes the table into README.md; --docs into docs/evaluation.md's block of the small-D rows
(SMALL_D_ROWS, PacGAN's Table 3 setting), which has no published rows: Table 3 ran Unrolled GAN's nets.

Each row trains as one 3-seed sweep (`sweep.field=seed`: the three GANs in one program, on the same
128,000 stacks), then reads `eval/modes` and `eval/kl_modes` (26,000 samples each, PacGAN's protocol)
at the last step of every member's metrics.jsonl, and reports mean ± std over the seeds, the worst
seed's KL (the target is per seed), the batch in samples, and the sweep's wall time (and a third of
it). The real-data row runs the same metric on 26,000 real stacks: what the classifier's own errors
cost. A row of CONTINUED_FROM goes on from another row's last checkpoint (a copy of that row's folder), and its
time is both sweeps'. The published rows are copied from PacGAN's Table 2 (Lin et al. 2018), whose runs are longer
and wider than a 2-core CPU allows. Member 0's last sample grid goes to docs/stacked/.
"""

import argparse
import datetime
import json
import pathlib
import shutil
import sys

from toy_table import SEEDS, train_sweep

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Where --readme and --docs write: the page and its block's markers.
TARGETS = {
  'readme': (ROOT / 'README.md', 'stacked'),
  'docs': (ROOT / 'docs' / 'evaluation.md', 'stacked-small-d'),
}
# name: (label, config, extra flags); of flags naming the same field, the last wins.
# The configs' recipe before they took translation at Adam(6e-4) (6,000 steps): Adam(4e-4) held constant, no
# augmentation, no EMA of G, 7,500 steps. Every row but the configs' own and DECAY's ran under it and passes it.
LR4 = (
  '--config.opt.g_lr=4e-4',
  '--config.opt.d_lr=4e-4',
  '--config.opt.schedule=constant',
  '--config.opt.decay_from=0.0',
  '--config.model.d_augment=',
  '--config.train.num_steps=7500',
  '--config.train.g_ema_decay=0.0',
)
# The configs' recipe between: translation at Adam(6e-4) for 6,000 steps as now, but the rate decaying linearly
# to 0 over the second half and samples from the live G instead of an EMA of it.
DECAY = ('--config.opt.schedule=linear', '--config.opt.decay_from=0.5', '--config.train.g_ema_decay=0.0')
# The configs' steps before they took 7,500: the rows whose runs ran then pass it.
STEPS6 = ('--config.train.num_steps=6000',)
# PacGAN's rate, the configs' before: the earlier rows' runs (docs/evaluation.md) used it.
LR2 = (*LR4, '--config.opt.g_lr=2e-4', '--config.opt.d_lr=2e-4', *STEPS6)
# The rows before standing statistics (samples normalised with G's running BatchNorm averages).
BEFORE = ('--config.eval.standing_stats=0', *LR2)
# G at twice D's rate for 5,000 steps: in single-seed trials of the packed config (seeds 1 and 2) it ended
# at least as low as 6,000 steps of LR4; over 3 seeds it did not (docs/evaluation.md).
G8 = (*LR4, '--config.opt.g_lr=8e-4', '--config.train.num_steps=5000')
# The configs with G's update on D's fake batch (`train.g_reuses_fakes`): one forward pass of G a step fewer.
REUSE = (*LR4, '--config.train.g_reuses_fakes=True', *STEPS6)
# Between the configs' rate and 8e-4, at which D won outright in a single-seed trial (docs/evaluation.md).
LR6 = (*LR4, '--config.opt.g_lr=6e-4', '--config.opt.d_lr=6e-4')
# The Adam(4e-4) configs of LR4 with samples from an EMA of G: the game as it was, other weights sampled. Over 3
# seeds it was never lower than the live G (stopped at 6,000; docs/evaluation.md). The configs now sample one.
EMA = (*LR4, '--config.train.g_ema_decay=0.999')
# D at half G's rate: in the configs D's accuracy was highest on the seed whose KL stalled, and at higher
# rates for both D won outright. Over 3 seeds the game stayed even but the KL no lower (docs/evaluation.md).
D2 = (*LR4, '--config.opt.d_lr=2e-4')
# The configs for twice their steps: how far the KL falls with more steps at the configs' rate. Its runs go
# on from the `pac_lr4` sweep's 7,500-step checkpoint (`CONTINUED_FROM`; a constant rate, so the same runs).
LONG = (*LR4, '--config.train.num_steps=15000')
# DiffAugment's translation of every image D sees, real or fake: the stacks reuse 10,000 digits, each seen
# hundreds of times a run, and D's accuracy climbs late in training, the limited-data setting it is made for.
AUG = (*LR4, '--config.model.d_augment=translation')
# DiffAugment's translation for twice the steps: whether D, kept from memorising, lets the KL fall on where the
# configs' leveled off. Its runs go on from the `pac_aug` sweep's 7,500-step checkpoint, as `pac_long`'s do.
AUG_LONG = (*AUG, '--config.train.num_steps=15000')
# Translation at Adam(6e-4): translation's 15,000 steps met the KL target on every seed, in twice the time a run
# may take. Without it D won at this rate (`pac_lr6`); with D kept in check, whether the KL falls sooner.
AUG_LR6 = (*AUG, '--config.opt.g_lr=6e-4', '--config.opt.d_lr=6e-4')
# The default's recipe (`mnist_gan.py`: joint D update, Adam(1e-3, b2=0.99) decaying to 0, EMA of G) with
# minibatch std in D: what a 3-seed sweep showed it buys here.
DEFAULT_RECIPE = (
  '--config.model.d_minibatch_std=True',
  '--config.opt.g_lr=1e-3',
  '--config.opt.d_lr=1e-3',
  '--config.opt.b2=0.99',
  '--config.opt.schedule=linear',
  '--config.train.d_update=joint',
  '--config.train.g_ema_decay=0.999',
)
ROWS = {
  'pac': ('PacDCGAN2, `stacked_mnist_pac.py`', 'stacked_mnist_pac', ()),
  'dcgan': ('DCGAN, `stacked_mnist.py`', 'stacked_mnist', ()),
  'pac_lr4': ('PacDCGAN2, Adam(4e-4), 7,500 steps (the earlier config)', 'stacked_mnist_pac', LR4),
  'dcgan_lr4': ('DCGAN, Adam(4e-4), 7,500 steps (the earlier config)', 'stacked_mnist', LR4),
  'pac_decay': ('PacDCGAN2, the rate decaying over the second half, the live G', 'stacked_mnist_pac', DECAY),
  'dcgan_decay': ('DCGAN, the rate decaying over the second half, the live G', 'stacked_mnist', DECAY),
  'pac_g8': ("PacDCGAN2, G at twice D's rate, 5,000 steps", 'stacked_mnist_pac', G8),
  'dcgan_g8': ("DCGAN, G at twice D's rate, 5,000 steps", 'stacked_mnist', G8),
  'pac_reuse': ("PacDCGAN2, G's update on D's fake batch", 'stacked_mnist_pac', REUSE),
  'dcgan_reuse': ("DCGAN, G's update on D's fake batch", 'stacked_mnist', REUSE),
  'pac_lr6': ('PacDCGAN2, Adam(6e-4), 7,500 steps', 'stacked_mnist_pac', LR6),
  'pac_ema': ('PacDCGAN2, samples from an EMA of G (0.999)', 'stacked_mnist_pac', EMA),
  'pac_d2': ("PacDCGAN2, D at half G's rate", 'stacked_mnist_pac', D2),
  'pac_long': ('PacDCGAN2, 15,000 steps', 'stacked_mnist_pac', LONG),
  'pac_aug': ("PacDCGAN2, DiffAugment's translation", 'stacked_mnist_pac', AUG),
  'dcgan_aug': ("DCGAN, DiffAugment's translation", 'stacked_mnist', AUG),
  'pac_aug_long': ("PacDCGAN2, DiffAugment's translation, 15,000 steps", 'stacked_mnist_pac', AUG_LONG),
  'pac_aug_lr6': ("PacDCGAN2, DiffAugment's translation, Adam(6e-4)", 'stacked_mnist_pac', AUG_LR6),
  'pac_lr2': ("PacDCGAN2, PacGAN's Adam(2e-4)", 'stacked_mnist_pac', LR2),
  'dcgan_lr2': ("DCGAN, PacGAN's Adam(2e-4)", 'stacked_mnist', LR2),
  'pac_running_bn': ("PacDCGAN2, Adam(2e-4), G's running BatchNorm averages", 'stacked_mnist_pac', BEFORE),
  'dcgan_running_bn': ("DCGAN, Adam(2e-4), G's running BatchNorm averages", 'stacked_mnist', BEFORE),
  'pac_default_recipe': (
    "PacDCGAN2, the default's recipe, minibatch std",
    'stacked_mnist_pac',
    (*BEFORE, *DEFAULT_RECIPE),
  ),
  'small_d': ('DCGAN, D at 1/4 width, `stacked_mnist_small_d.py`', 'stacked_mnist_small_d', ()),
  'small_d_pac': (
    'PacDCGAN2, D at 1/4 width',
    'stacked_mnist_small_d',
    ('--config.model.d_pack=2', '--config.train.batch_size=128'),
  ),
}
# Rows whose runs went on from another row's last checkpoint: their sweep's wall time is both sweeps'.
CONTINUED_FROM = {'pac_long': 'pac_lr4', 'pac_aug_long': 'pac_aug'}
# The README's table (at its line limit): both configs, packed and plain.
README_ROWS = ('pac', 'dcgan')
# docs/evaluation.md's table: D at a quarter of its width, plain and packed.
SMALL_D_ROWS = ('small_d', 'small_d_pac')
# PacGAN (Lin et al. 2018), Table 2: modes (of 1,000) and KL to uniform, as published. For PacGAN's own
# runs, batch (in samples) and steps from its code (stacked_MNIST_experiments/VEEGAN_experiment/config.py:
# 50 epochs of 128,000 stacks at 64 packs a step, two G updates per D update); the others' are not given.
PUBLISHED = (
  ('DCGAN (from VEEGAN)', '', '', '99', '3.40'),
  ("DCGAN (PacGAN's run)", '64', '100,000', '78.9 ± 6.5', '4.50 ± 0.13'),
  ('ALI', '', '', '16', '5.40'),
  ('Unrolled GAN', '', '', '48.7', '4.32'),
  ('VEEGAN', '', '', '150', '2.95'),
  ('PacDCGAN2', '128', '100,000', '1000 ± 0', '0.06 ± 0.003'),
  ('PacDCGAN4', '256', '100,000', '1000 ± 0', '0.07 ± 0.005'),
)


def _last_eval(workdir: pathlib.Path) -> dict[str, float]:
  rows = [json.loads(line) for line in (workdir / 'metrics.jsonl').read_text().splitlines()]
  evals = [r for r in rows if 'eval/modes' in r]
  if not evals:
    raise SystemExit(f'no Stacked MNIST evaluation in {workdir}/metrics.jsonl')
  return evals[-1]


def _mean_std(values) -> str:
  import numpy as np

  values = np.asarray(values, np.float64)
  return f'{values.mean():.1f} ± {values.std(ddof=1):.1f}', f'{values.mean():.2f} ± {values.std(ddof=1):.2f}'


def sweep_seconds(out: pathlib.Path, name: str) -> float:
  """Row `name`'s sweep wall time, with the sweeps it went on from (`CONTINUED_FROM`)."""
  seconds = json.loads((out / name / 'summary.json').read_text())['wall_s']
  return seconds + (sweep_seconds(out, CONTINUED_FROM[name]) if name in CONTINUED_FROM else 0.0)


def copy_predecessor(out: pathlib.Path, name: str) -> None:
  """Row `name`'s folder as a copy of the runs it goes on from (`CONTINUED_FROM`); SystemExit if they are not there."""
  before = out / CONTINUED_FROM[name]
  if not (before / 'checkpoints').is_dir():
    sys.exit(
      f'stacked_table.py: error: row {name} goes on from the checkpoint of row {CONTINUED_FROM[name]}, '
      f'not in {before}: train --rows {CONTINUED_FROM[name]} first'
    )
  shutil.rmtree(out / name, ignore_errors=True)
  shutil.copytree(before, out / name)
  # The copy's summary is the predecessor's: were it left, a continuation that stopped early would count its time twice.
  (out / name / 'summary.json').unlink(missing_ok=True)


def real_stacks(num: int = 26_000):
  """`num` real stacks in [-1, 1] (stacked_seed 1: not the training stacks)."""
  from ganjax import evaluate, input_pipeline
  from ganjax.config import load_experiment

  config = load_experiment(ROOT / 'experiments' / 'stacked_mnist.py')
  config.data.stacked_size, config.data.stacked_seed = num, 1
  return evaluate.to_unit(input_pipeline.load(config).images)


def real_row(num: int = 26_000) -> tuple[int, float]:
  """Modes and KL of `num` real stacks as the classifier reads them."""
  from ganjax import stacked_mnist

  stats = stacked_mnist.ModeCounter()(real_stacks(num))
  return stats['modes'], stats['kl_modes']


def table(out: pathlib.Path, names: list[str], command: str, published: bool = True) -> str:
  """The Markdown table of rows `names` from their sweeps in `out`, credited to `command`."""
  from quality import machine
  from readme_block import code_of_runs

  code = code_of_runs([out / name for name in names])
  lines = [
    f'Written by `{command}` on {datetime.date.today()}: trained by {code}; '
    f'{machine()}. Seeds {SEEDS}, each row one seed sweep (three GANs in one program); mean ± std over the '
    'seeds of the last evaluation, 26,000 samples each.',
    '',
    '| model | batch | steps | modes (of 1,000) | KL to uniform | KL, worst seed | sweep wall time (per seed) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  docs = ROOT / 'docs' / 'stacked'
  docs.mkdir(parents=True, exist_ok=True)
  for name in names:
    label = ROWS[name][0]
    records = [_last_eval(out / name / f'member_{k}') for k in range(len(SEEDS))]
    modes, _ = _mean_std([r['eval/modes'] for r in records])
    _, kl = _mean_std([r['eval/kl_modes'] for r in records])
    worst = max(r['eval/kl_modes'] for r in records)
    batch = json.loads((out / name / 'member_0' / 'config.json').read_text())['train']['batch_size']
    minutes = sweep_seconds(out, name) / 60
    per_seed = f'{minutes:.0f} min ({minutes / len(SEEDS):.0f} min)'
    lines.append(f'| {label} | {batch} | {records[0]["step"]:,} | {modes} | {kl} | {worst:.3f} | {per_seed} |')
    grids = sorted((out / name / 'member_0' / 'samples').glob('step_*.png'))
    if grids:
      shutil.copy(grids[-1], docs / f'{name}.png')
  modes, kl = real_row()
  lines.append(f'| real stacks (the classifier on 26,000 real images) | | | {modes} | {kl:.3f} | | |')
  for label, batch, steps, published_modes, published_kl in PUBLISHED if published else ():
    cells = f'{batch} | {steps} | {published_modes} | {published_kl} | |'
    lines.append(f'| {label}, published (PacGAN, Table 2) | {cells} |')
  return '\n'.join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', default='runs/stacked', help='folder of the runs')
  parser.add_argument(
    '--rows', default='', help=f"comma-separated, of {', '.join(ROWS)} (default: the target page's rows)"
  )
  parser.add_argument('--steps', type=int, default=0, help='override train.num_steps (0: the configs)')
  parser.add_argument(
    '--eval-every', type=int, default=3000, help='steps between evaluations (each about half a minute a member)'
  )
  where = parser.add_mutually_exclusive_group()
  where.add_argument('--readme', action='store_true', help='write the table into README.md')
  where.add_argument('--docs', action='store_true', help="write it into docs/evaluation.md's small-D block")
  parser.add_argument('--skip-training', action='store_true', help='tabulate the runs already in --out')
  args = parser.parse_args()
  if args.eval_every <= 0:
    # Checked before train_sweep clears a row's folder: the table reads each member's last evaluation.
    parser.error(f'--eval-every must be > 0 (the table reads the last evaluation), got {args.eval_every}')
  target = 'readme' if args.readme else 'docs' if args.docs else ''
  default = list(SMALL_D_ROWS if target == 'docs' else README_ROWS)
  names = args.rows.split(',') if args.rows else default
  unknown = set(names) - set(ROWS)
  if unknown:
    sys.exit(f'unknown rows {sorted(unknown)}; choose from {list(ROWS)}')
  out = (ROOT / args.out).resolve()
  out.mkdir(parents=True, exist_ok=True)
  if not args.skip_training:
    for name in names:
      _, config, extra = ROWS[name]
      steps = (f'--config.train.num_steps={args.steps}',) if args.steps else ()
      # An evaluation of 26,000 samples every 3,000 steps per member by default: each takes half a minute.
      # 'unroll': the members one after another in one program. Vmapped, PacGAN's-recipe packed sweep ran
      # 1.29 steps/s (3.9 member steps/s) where a lone run of it ran 5.6.
      budget = (
        '--config.checkpoint.every_steps=0',
        f'--config.eval.every_steps={args.eval_every}',
        '--config.sweep.mode=unroll',
      )
      if name in CONTINUED_FROM:
        copy_predecessor(out, name)
      train_sweep(out, name, config, (*budget, *extra, *steps), resume=name in CONTINUED_FROM)
  command = ' '.join(
    [
      'python benchmarks/stacked_table.py',
      *([f'--rows {",".join(names)}'] if names != default else []),
      *([f'--{target}'] if target else []),
    ]
  )
  text = table(out, names, command, published=target != 'docs')
  print(text)
  if target:
    from readme_block import write

    page, block = TARGETS[target]
    write(f'<!-- {block}:start -->', f'<!-- {block}:end -->', text, page)


if __name__ == '__main__':
  main()
