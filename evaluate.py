"""Evaluate a run: python evaluate.py --checkpoint=runs/celeba64 --metrics=swd,fid.

Generates --num_samples images from the run's G (its EMA copy unless
--no_ema), draws as many real images of the run's dataset through the
training pipeline, prints SWD / FID / KID / coverage and writes
<run>/eval/metrics_step<step>_n<N>_seed<seed>.json. --real_vs_real compares
two disjoint real sets instead (the floor a generator cannot beat), from a run's dataset or,
without --checkpoint, from --preset/--dataset/--data_dir.
"""

import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # hide TF's C++ chatter

from absl import app
from absl import flags

from common import interrupts
from configs import definitions
from configs import presets
from configs import errors

definitions.define_generator_flags(required=False)  # not with --real_vs_real
flags.DEFINE_list(
  'metrics',
  ['swd'],
  'Comma-separated: swd, fid, kid, '
  'coverage (precision, recall, density and coverage at k=5 '
  'in pixel-PCA space; on Inception features too when '
  '--inception_weights is given).',
)
flags.DEFINE_integer('num_samples', 2048, 'Images per set (generated, real).', lower_bound=1)
flags.DEFINE_string(
  'inception_weights',
  '',
  "InceptionV3 notop .h5 weights file for FID/KID; empty: Keras' cache or download.",
)
flags.DEFINE_integer(
  'seed', 0, 'Seed of latents, real-image order, SWD patches and projections, KID subsets.'
)
flags.DEFINE_bool(
  'real_vs_real', False, 'Compare two disjoint real sets instead of generated vs real.'
)
flags.DEFINE_integer('batch_size', 64, 'Generator and InceptionV3 batch.', lower_bound=1)
flags.DEFINE_string('data_dir', '', "Overrides the run's data_dir.")
flags.DEFINE_enum(
  'preset',
  'celeba64',
  list(presets.PRESETS),
  'Without --checkpoint (--real_vs_real only): the preset whose image size and crop to use.',
)
flags.DEFINE_enum(
  'dataset', None, presets.DATASETS, "Without --checkpoint: the dataset (default: the preset's)."
)
flags.DEFINE_string(
  'output', '', 'Write the JSON here instead of <run>/eval/ (the only place without --checkpoint).'
)
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  if not FLAGS.checkpoint and not FLAGS.real_vs_real:
    raise app.UsageError(
      'Pass --checkpoint=<run dir> (or --real_vs_real with --preset and --dataset/--data_dir).'
    )
  # Imported here so --help answers without loading TensorFlow.
  with interrupts.deferred():
    from metrics import evaluation
    from metrics import run_eval
  weights = FLAGS.inception_weights or 'imagenet'
  config = None
  if not FLAGS.checkpoint:
    overrides = {'data_dir': FLAGS.data_dir}
    if FLAGS.dataset:
      overrides['dataset'] = FLAGS.dataset
    try:
      config = presets.get_config(FLAGS.preset, **overrides)
    except ValueError as e:  # one line, not absl's usage text
      sys.exit(f'error: {e}')
  try:
    metrics = evaluation.parse_metrics(FLAGS.metrics)
    if FLAGS.checkpoint:
      result = run_eval.evaluate_run(
        FLAGS.checkpoint,
        metrics,
        FLAGS.num_samples,
        FLAGS.seed,
        weights,
        use_ema=not FLAGS.no_ema,
        data_dir=FLAGS.data_dir,
        batch_size=FLAGS.batch_size,
        compare_real=FLAGS.real_vs_real,
        write=not FLAGS.output,
        coverage_inception=bool(FLAGS.inception_weights),
      )
    else:
      result = evaluation.real_vs_real(
        config,
        metrics,
        FLAGS.num_samples,
        FLAGS.seed,
        weights,
        coverage_inception=bool(FLAGS.inception_weights),
      )
  except OSError as e:  # <run>/eval cannot be written
    sys.exit(
      f'error: cannot write {e.filename!r} ({e.strerror}): pass --output=<file> somewhere writable.'
    )
  if FLAGS.output:
    try:
      os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
      run_eval.write_json(FLAGS.output, result)
    except OSError as e:
      sys.exit(
        f'error: cannot write --output {FLAGS.output!r} '
        f'({e.strerror}); the metrics were:\n' + evaluation.format_table(result)
      )
    result['output'] = FLAGS.output
  what = (
    'real vs real'
    if result['mode'] == 'real_vs_real'
    else f'{result["generator"]} at step {result["step"]}'
  )
  print(
    f'{what}, {result["num_samples"]} vs {result["num_samples"]} images, '
    f'{result["image_size"][0]}x{result["image_size"][1]}:'
  )
  print(evaluation.format_table(result))
  print('seconds: ' + ', '.join(f'{k} {v:.1f}' for k, v in result['seconds'].items()))
  if 'output' in result:
    print(f'Wrote {result["output"]}')


if __name__ == '__main__':
  app.run(interrupts.quit_quietly(errors.one_line(main)))
