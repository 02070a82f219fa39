"""The collapse watch: warns once when D wins outright or samples collapse."""

import numpy as np

from training import collapse


def test_d_winning_warns_once_after_patience_intervals():
  watch = collapse.CollapseWatch(d_fake_floor=0.02, patience=3)
  assert watch.observe_d(0.01, 10) is None
  assert watch.observe_d(0.5, 20) is None  # a recovery resets the streak
  assert watch.observe_d(0.01, 30) is None
  assert watch.observe_d(0.015, 40) is None
  assert watch.d_scalars() == {'collapse/d_wins': 0.0}
  warning = watch.observe_d(0.001, 50)
  assert warning and 'step 50' in warning and '--diffaugment' in warning
  assert watch.d_scalars() == {'collapse/d_wins': 1.0}
  assert watch.observe_d(0.001, 60) is None  # once only
  watch.observe_d(0.3, 70)
  assert watch.d_scalars() == {'collapse/d_wins': 0.0}


def test_sample_diversity_separates_varied_from_identical_samples():
  rng = np.random.default_rng(0)
  varied = rng.uniform(-1, 1, (16, 8, 8, 3))
  same = np.repeat(varied[:1], 16, axis=0) + rng.normal(0, 0.01, (16, 8, 8, 3))
  assert collapse.sample_diversity(varied) > 0.5
  assert collapse.sample_diversity(same) < 0.02
  watch = collapse.CollapseWatch()
  # A fresh G's samples are all alike: no warning before they were diverse.
  assert watch.observe_diversity(collapse.sample_diversity(same), 1) is None
  assert watch.observe_diversity(collapse.sample_diversity(varied), 5) is None
  warning = watch.observe_diversity(collapse.sample_diversity(same), 9)
  assert warning and 'lost their diversity' in warning
  assert watch.observe_diversity(0.0, 12) is None  # once only


def test_partial_collapse_remedies_leave_out_what_the_run_uses():
  from configs.presets import get_config

  plain = collapse.partial_remedies(get_config('celeba157x128', r1_gamma=0.0, d_batch_norm='off'))
  flags = ('--r1_gamma=1', '--augment_p=0.5', '--d_mbstd_group=4', '--d_batch_norm=on')
  for flag in flags + ('--checkpoint=<run>/best',):
    assert flag in plain, flag
  tried = collapse.partial_remedies(
    get_config('celeba157x128', r1_gamma=1.0, augment_p=0.5, d_mbstd_group=4)
  )
  assert '--r1_gamma' not in tried and '--augment_p' not in tried
  assert '--d_batch_norm' not in tried  # the preset has it; dcgan's D by its arch
  assert '--d_batch_norm' not in collapse.partial_remedies(get_config('celeba64'))
  assert '--d_mbstd_group' not in tried and '--checkpoint=<run>/best' in tried
  watch = collapse.CollapseWatch(remedies=tried)
  assert watch.observe_duplicates(0.0, 100, 0.4) is None
  assert '--r1_gamma' not in watch.observe_duplicates(0.9, 200, 0.4)


def test_a_young_g_s_blurry_faces_are_no_partial_collapse():
  # celeba64 on 2,500 faces (docs/results.md): near-copies 100% up to step
  # 200, 22% at 250 and 72% at 300 while every sample was still one blurry
  # average face (per-pixel spread 0.12), then none once faces formed.
  watch = collapse.CollapseWatch()
  young = [(1.0, 200, 0.115), (0.219, 250, 0.124), (0.719, 300, 0.115), (0.0, 350, 0.191)]
  assert all(watch.observe_duplicates(*seen) is None for seen in young)
  assert watch.observe_duplicates(0.0, 400, 0.293) is None  # faces: armed now
  warning = watch.observe_duplicates(0.6, 2000, 0.3)
  assert warning and 'partial mode collapse at step 2000' in warning


def test_the_best_evaluation_is_kept_across_a_resume(tmp_path):
  import tensorflow as tf
  from training import checkpoints

  weight = tf.Variable(0.0)
  ckpt = tf.train.Checkpoint(weight=weight)
  keeper = checkpoints.BestKeeper(ckpt, str(tmp_path), 'swd')
  kept = {}
  for step, swd in ((100, 50.0), (200, 60.0), (300, 40.0), (400, float('nan'))):
    weight.assign(float(step))
    kept[step] = keeper.offer({'eval/swd': swd, 'eval/coverage': 0.5}, step)
  assert kept[100] and kept[200] is None and kept[300] and kept[400] is None
  assert tf.train.latest_checkpoint(str(tmp_path / 'best')) == kept[300]
  assert tf.train.load_variable(kept[300], 'weight/.ATTRIBUTES/VARIABLE_VALUE') == 300
  assert not tf.io.gfile.glob(kept[100] + '.index')  # one kept
  # A resumed run knows the best so far; a new metric starts afresh.
  resumed = checkpoints.BestKeeper(ckpt, str(tmp_path), 'swd')
  assert resumed.offer({'eval/swd': 45.0}, 500) is None
  assert resumed.offer({'eval/swd': 39.0}, 600)
  (tmp_path / 'best' / 'best.json').write_text('{"metric": "swd", "val')
  assert checkpoints.BestKeeper(ckpt, str(tmp_path), 'swd').best is None
  by_coverage = checkpoints.BestKeeper(ckpt, str(tmp_path), 'coverage')
  assert by_coverage.offer({'eval/coverage': 0.3}, 700)
  assert by_coverage.offer({'eval/coverage': 0.2}, 800) is None
  assert by_coverage.offer({'eval/coverage': 0.4}, 900)


def test_a_best_checkpoint_that_cannot_be_written_does_not_stop_training(tmp_path, capsys):
  import tensorflow as tf
  from training import checkpoints

  keeper = checkpoints.BestKeeper(tf.train.Checkpoint(w=tf.Variable(1.0)), str(tmp_path), 'swd')

  def full_disk(**_):
    raise OSError(28, 'No space left on device')

  keeper.manager.save = full_disk
  assert keeper.offer({'eval/swd': 10.0}, 100) is None
  assert 'No space left on device' in capsys.readouterr().out
  assert keeper.best is None  # the next evaluation tries again


def test_samples_crowding_around_a_few_faces_warn_after_two_evaluations():
  # recall and density of the three presets' hours (docs/results.md).
  hours = {
    'celeba157x128': [(0.029, 1.748), (0.023, 2.202), (0.064, 2.26)],
    'celeba64': [(0.047, 1.296), (0.461, 0.69), (0.719, 0.343)],
    'celeba48': [(0.0, 0.62), (0.08, 0.78), (0.231, 0.83)],
  }
  warned = {}
  for preset, evals in hours.items():
    watch = collapse.CollapseWatch()
    warned[preset] = [
      w
      for i, (recall, density) in enumerate(evals)
      for w in watch.observe_eval({'eval/recall': recall, 'eval/density': density}, 500 * (i + 1))
    ]
  assert warned['celeba64'] == [] and warned['celeba48'] == []
  assert len(warned['celeba157x128']) == 1
  assert 'partial mode collapse at step 1000' in warned['celeba157x128'][0]
  assert 'recall 0.02' in warned['celeba157x128'][0]
  # The face region's coverage, when measured, is named in the warning.
  watch = collapse.CollapseWatch()
  scores = {'eval/recall': 0.03, 'eval/density': 2.2, 'eval/face_coverage': 0.38}
  assert watch.observe_eval(scores, 500) == []
  assert 'coverage of the face region 0.38' in watch.observe_eval(scores, 1000)[0]
  # One crowded evaluation between healthy ones is not enough.
  watch = collapse.CollapseWatch()
  for recall, density in ((0.05, 2.0), (0.4, 0.8), (0.05, 2.0), (0.4, 0.8)):
    assert watch.observe_eval({'eval/recall': recall, 'eval/density': density}, 1) == []
