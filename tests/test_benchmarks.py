"""The profiler behind `benchmarks/profile_step.py --ops`, the variants of `benchmarks/step_variants.py` and
the tables of `benchmarks/stacked_trials.py` and `stacked_digits.py`, and the continued rows of `stacked_table.py`
(scripts; their numbers are not tested)."""

import json
import pathlib
import sys

import jax
import jax.numpy as jnp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / 'benchmarks'))
import numpy as np  # noqa: E402
import profile_step  # noqa: E402
import pytest  # noqa: E402
import stacked_digits  # noqa: E402
import stacked_table  # noqa: E402
import stacked_trials  # noqa: E402
import step_variants  # noqa: E402

from ganjax import stacked_mnist  # noqa: E402

TINY = pathlib.Path(__file__).resolve().parent.parent / 'experiments' / 'tiny.py'


def test_op_sources_map_compiled_instructions_to_model_code():
  def f(x, w):
    return jnp.tanh(x @ w)

  x, w = jnp.ones((8, 4)), jnp.ones((4, 3))
  sources = profile_step._op_sources(jax.jit(f).lower(x, w).compile().as_text())
  assert sources, 'no instruction carried op_name metadata'
  assert any(src.startswith('f32[8,3]') and 'dot_general' in src for src in sources.values())


def test_op_profile_charges_the_traced_step_to_its_ops(tiny_config):
  ms_per_step, rows = profile_step.op_profile(tiny_config, steps=2)
  assert ms_per_step > 0 and rows
  charged = [ms for ms, _, _ in rows]
  assert all(ms >= 0 for ms in charged) and charged == sorted(charged, reverse=True)
  # Launch-to-launch intervals inside the traced steps cannot add up to more than the traced time.
  assert sum(charged) <= ms_per_step * 1.05
  sources = ' '.join(source for _, _, source in rows)
  assert 'Discriminator' in sources and 'Generator' in sources


def test_step_variants_apply_overrides_as_literals_and_name_a_bad_one():
  config = step_variants._config(TINY, 'train.g_reuses_fakes=True opt.g_lr=8e-4 loss.name=hinge seed=3')
  assert config.train.g_reuses_fakes is True and config.opt.g_lr == 8e-4 and config.loss.name == 'hinge'
  assert config.seed == 3
  with pytest.raises(SystemExit, match="key=value pairs of config keys, got 'train.nope=1'"):
    step_variants._config(TINY, 'train.nope=1')
  with pytest.raises(SystemExit, match="got 'nosection.x=1'"):
    step_variants._config(TINY, 'nosection.x=1')
  with pytest.raises(SystemExit, match="got 'g_steps'"):
    step_variants._config(TINY, 'g_steps')


def _sweep(workdir, kls_by_seed, d_acc):
  """A fake sweep folder: each member's metrics.jsonl with training rows and evaluations."""
  for k, kls in enumerate(kls_by_seed):
    rows = [{'step': s, 'd_acc': d_acc} for s in range(100, 7600, 100)]
    rows += [{'step': s, 'eval/kl_modes': kl, 'eval/modes': 1000} for s, kl in kls.items()]
    member = workdir / f'member_{k}'
    member.mkdir(parents=True)
    (member / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in sorted(rows, key=lambda r: r['step'])))


def test_stacked_trials_tabulate_each_sweep_at_shared_evaluations(tmp_path):
  _sweep(tmp_path / 'pac', [{3000: 0.2, 7500: 0.1}, {3000: 0.4, 7500: 0.3}, {3000: 0.3, 7500: 0.2}], 0.75)
  _sweep(tmp_path / 'pac_lr6', [{3000: 0.25}, {3000: 0.25}, {3000: 0.25}], 0.5)
  head, _, pac, lr6 = stacked_trials.trials(tmp_path, ['pac', 'pac_lr6'])
  assert head.count('KL at') == len(stacked_trials.STEPS)
  cells = [c.strip() for c in pac.split('|')[1:-1]]
  # 3,000 and 7,500 are tabulated, 4,500 and 6,000 left empty; the last evaluation per seed; D's mean accuracy.
  assert cells[1:6] == ['0.300 ± 0.100', '', '', '0.200 ± 0.100', '7,500: 0.100 / 0.300 / 0.200']
  assert cells[6] == '0.75'
  assert [c.strip() for c in lr6.split('|')[1:-1]][5:7] == ['3,000: 0.250 / 0.250 / 0.250', '0.50']
  assert stacked_trials.curve(tmp_path, 'pac')[2:] == [
    '| 3,000 | 0.200 | 0.400 | 0.300 | 0.300 ± 0.100 |',
    '| 7,500 | 0.100 | 0.300 | 0.200 | 0.200 ± 0.100 |',
  ]
  _sweep(tmp_path / 'stopped', [{}, {}, {}], 0.5)  # stopped before its first evaluation
  with pytest.raises(SystemExit, match='no evaluation shared by the members of .*stopped'):
    stacked_trials.trials(tmp_path, ['stopped'])
  (tmp_path / 'pac' / 'member_2' / 'metrics.jsonl').unlink()
  with pytest.raises(SystemExit, match='member_2/metrics.jsonl is missing'):
    stacked_trials.trials(tmp_path, ['pac'])


def test_stacked_digits_split_the_reads_by_the_classifier_s_certainty():
  probs = np.full((6, 10), 0.01)
  # Two stacks, channel-major (R of both, then G, then B): digits 1, 1 | 2, 8 | 3, 9; the 8 and the 9 unsure.
  for row, (digit, top) in enumerate([(1, 0.91), (1, 0.91), (2, 0.91), (8, 0.5), (3, 0.91), (9, 0.5)]):
    probs[row, digit] = top
  np.testing.assert_array_equal(stacked_mnist.modes_of(probs.argmax(axis=1)), [123, 189])
  every, sure, unsure = stacked_digits.digit_lines('run', probs, 0.9)
  assert '(100.0% of channels)' in every and '1:33.3' in every and '8:16.7' in every
  assert '( 66.7% of channels)' in sure and '1:50.0' in sure and '8: 0.0' in sure
  assert '( 33.3% of channels)' in unsure and '8:50.0' in unsure and '9:50.0' in unsure


def test_a_continued_stacked_row_goes_on_from_a_copy_of_its_predecessor_and_counts_both_times(tmp_path):
  with pytest.raises(SystemExit, match='row pac_aug_long goes on from the checkpoint of row pac_aug, not in .*pac_aug'):
    stacked_table.copy_predecessor(tmp_path, 'pac_aug_long')
  before = tmp_path / 'pac_aug'
  (before / 'checkpoints' / '7500').mkdir(parents=True)
  (before / 'summary.json').write_text(json.dumps({'wall_s': 100.0}))
  (tmp_path / 'pac_aug_long' / 'stale').mkdir(parents=True)  # a folder left by an earlier try is replaced
  stacked_table.copy_predecessor(tmp_path, 'pac_aug_long')
  after = tmp_path / 'pac_aug_long'
  assert (after / 'checkpoints' / '7500').is_dir() and not (after / 'stale').exists()
  assert not (after / 'summary.json').exists()  # only the continuation writes its own
  (after / 'summary.json').write_text(json.dumps({'wall_s': 50.0}))  # the continuation's own time
  assert stacked_table.sweep_seconds(tmp_path, 'pac_aug_long') == 150.0
  assert stacked_table.sweep_seconds(tmp_path, 'pac_aug') == 100.0
