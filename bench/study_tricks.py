"""CPU study: vanilla DCGAN against the presets' stabilising tricks.

python bench/study_tricks.py --dataset=synthetic --out=runs/study_synthetic
python bench/study_tricks.py --dataset=celeba_half \
    --data_dir=<half-size CelebA folder> --out=runs/study_celeba_half

Every configuration trains the `quick48` architecture and optimiser (48x48,
batch 32, Adam beta1 0.5, 32 G/D filters) from the same seed on the same data
order for --steps steps (or until --minutes run out), and every --eval_every
steps measures SWD (x1e3, 48x48, metrics.swd) of --num_eval generated images
(the EMA G when the config has one) against --num_eval real ones. The
real-vs-real floor is measured at the same N between two disjoint real sets.
With --precisions=off,mixed_bfloat16 every configuration is trained in both
precisions (the same seed and data order), to check that a faster precision
does not cost quality. Writes <out>/study.json (every number), <out>/swd.png (SWD vs step),
<out>/grids.png (final sample grids side by side, real faces first) and
<out>/<config>_step<k>.png (each evaluated grid).
"""

import dataclasses
import json
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags

from configs import presets

from bench import plotting

flags.DEFINE_enum(
  'dataset',
  'synthetic',
  ['synthetic', 'celeba_half'],
  'Built-in synthetic faces, or the half-size CelebA folder.',
)
flags.DEFINE_string('data_dir', None, 'Image folder for --dataset=celeba_half (required there).')
flags.DEFINE_integer('steps', 900, 'Training steps per configuration.')
flags.DEFINE_float(
  'minutes', 4.0, 'Wall-clock cap on training per configuration (evaluation not counted); 0: none.'
)
flags.DEFINE_integer('eval_every', 300, 'Steps between SWD evaluations.')
flags.DEFINE_integer('num_eval', 512, 'N: generated and real images per SWD.')
flags.DEFINE_list('configs', [], 'Subset of configurations (default: all).')
flags.DEFINE_list(
  'precisions',
  ['off'],
  'Mixed precision policies to train '
  'every configuration with (off, mixed_bfloat16, '
  'mixed_float16); names get an @bf16/@fp16 suffix.',
)
flags.DEFINE_integer('seed', 0, 'Seed of weights, data order, latents, SWD.')
flags.DEFINE_string('out', 'runs/study', 'Output folder.')
flags.DEFINE_bool('plot_only', False, 'Only redraw <out>/swd.png from <out>/study.json.')
FLAGS = flags.FLAGS

# The tricks, on top of BASE. `all+ema` is the quick48 recipe plus smoothing
# and spectral norm.
VANILLA = dict(
  instance_noise='none',
  d_dropout=0.0,
  real_label_low=1.0,
  real_label_high=1.0,
  d_spectral_norm=False,
  ema_decay=0.0,
)
NOISE = dict(instance_noise='additive', noise_sd=0.1)
SMOOTH = dict(real_label_low=0.9, real_label_high=0.9)
DROP_SN = dict(d_dropout=0.3, d_spectral_norm=True)
CONFIGS = {
  'vanilla': VANILLA,
  '+noise': {**VANILLA, **NOISE},
  '+smooth': {**VANILLA, **SMOOTH},
  '+dropout+sn': {**VANILLA, **DROP_SN},
  'all+ema': {**VANILLA, **NOISE, **SMOOTH, **DROP_SN, 'ema_decay': 0.999},
}
GRID_SAMPLES = 16


def base_config(**overrides):
  data = (
    dict(dataset='synthetic', synthetic_size=4096)
    if FLAGS.dataset == 'synthetic'
    else dict(dataset='folder', data_dir=FLAGS.data_dir)
  )
  return presets.get_config(
    'quick48', seed=FLAGS.seed, cache='', jit_compile='off', **{**data, **overrides}
  )


def load_real(config):
  """The dataset's images (uint8, 48x48) in a seeded order (whole batches of
  64, as evaluation.real_images reads them: up to 63 images are left out)."""
  from data import pipeline
  from metrics import evaluation

  size = pipeline.open_source(config).size
  return evaluation.real_images(config, size - size % 64, FLAGS.seed)


def train_config(name, config, real, eval_real, out):
  """Trains one configuration; returns its record with SWD per eval step."""
  import keras
  import numpy as np
  import tensorflow as tf
  from common.files import from_float
  from metrics import evaluation
  from models.gan import GAN
  from pictures import images as img

  keras.utils.set_random_seed(config.seed)
  gan = GAN(config)
  train_step = tf.function(gan.step_fn)
  rng = np.random.default_rng(config.seed)  # same data order for every config
  z_grid = (
    np.random.default_rng([config.seed, 1])
    .standard_normal((GRID_SAMPLES, config.latent_dim))
    .astype(np.float32)
  )
  record = dict(config=dataclasses.asdict(config), evals=[])
  order, pos, train_seconds = rng.permutation(len(real)), 0, 0.0
  step, grid = 0, None
  while True:
    if (
      step % FLAGS.eval_every == 0
      or step == FLAGS.steps
      or (FLAGS.minutes and train_seconds > 60 * FLAGS.minutes)
    ):
      tick = time.perf_counter()
      fake = evaluation.generate_images(gan.sample, config, FLAGS.num_eval, FLAGS.seed)
      swd = evaluation.compute_metrics(fake, eval_real, ['swd'], FLAGS.seed)['swd']
      grid = img.make_grid(from_float(gan.sample(tf.constant(z_grid))).numpy())
      img.save_png(os.path.join(out, f'{name}_step{step:05d}.png'), grid)
      record['evals'].append(
        dict(
          step=step, train_seconds=train_seconds, swd=swd, eval_seconds=time.perf_counter() - tick
        )
      )
      print(
        f'[{name}] step {step}: SWD avg {swd["avg"]:.2f} ({train_seconds:.0f} s training)',
        flush=True,
      )
      if step >= FLAGS.steps or (FLAGS.minutes and train_seconds > 60 * FLAGS.minutes):
        break
    tick = time.perf_counter()
    for _ in range(min(FLAGS.eval_every - step % FLAGS.eval_every, FLAGS.steps - step)):
      if pos + config.batch_size > len(order):
        order, pos = rng.permutation(len(real)), 0
      batch = real[order[pos : pos + config.batch_size]]
      pos += config.batch_size
      out_m = train_step(tf.constant(batch, tf.float32) / 127.5 - 1.0)
      step += 1
      if FLAGS.minutes and time.perf_counter() - tick + train_seconds > 60 * FLAGS.minutes:
        break
    train_seconds += time.perf_counter() - tick
    losses = {k: float(out_m[k]) for k in ('d_loss', 'g_loss', 'd_real', 'd_fake')}
    record.setdefault('losses', []).append(dict(step=step, **losses))
  record['steps'] = step
  record['steps_per_second'] = step / max(train_seconds, 1e-9)
  return record, grid


def plot_json(out):
  """Redraws <out>/swd.png from <out>/study.json."""
  with open(os.path.join(out, 'study.json')) as f:
    s = json.load(f)
  series = {n: [(e['step'], e['swd']['avg']) for e in r['evals']] for n, r in s['configs'].items()}
  plotting.swd_plot(
    series,
    s['floor']['avg'],
    os.path.join(out, 'swd.png'),
    f'SWD x1e3 (avg of levels, log axis), {s["dataset"]}, N={s["num_eval"]}',
  )


def main(argv):
  del argv
  if FLAGS.plot_only:
    return plot_json(FLAGS.out)
  if FLAGS.dataset == 'celeba_half' and not FLAGS.data_dir:
    raise app.UsageError(
      '--dataset=celeba_half needs --data_dir: a folder of (half-size) CelebA images.'
    )
  import numpy as np
  from metrics import evaluation
  from pictures import images as img

  os.makedirs(FLAGS.out, exist_ok=True)
  names = FLAGS.configs or list(CONFIGS)
  tick = time.perf_counter()
  real = load_real(base_config())
  n = FLAGS.num_eval
  print(f'{len(real)} real images in {time.perf_counter() - tick:.0f} s', flush=True)
  # Two disjoint real sets of one seeded order (as evaluation.real_vs_real);
  # the first is also the reference for every generator.
  eval_real = real[:n]
  floor = evaluation.compute_metrics(real[:n], real[n : 2 * n], ['swd'], FLAGS.seed)['swd']
  print(f'real-vs-real floor at N={n}: {floor}', flush=True)
  summary = dict(
    dataset=FLAGS.dataset,
    data_dir=FLAGS.data_dir if FLAGS.dataset == 'celeba_half' else '',
    num_real=len(real),
    num_eval=n,
    seed=FLAGS.seed,
    steps=FLAGS.steps,
    minutes=FLAGS.minutes,
    eval_every=FLAGS.eval_every,
    floor=floor,
    configs={},
  )
  results, grids = {}, [img.label(img.make_grid(real[-GRID_SAMPLES:]), 'real')]
  suffix = dict(off='', mixed_bfloat16='@bf16', mixed_float16='@fp16')
  runs = [
    (name + suffix[p], base_config(**CONFIGS[name], mixed_precision=p))
    for name in names
    for p in FLAGS.precisions
  ]
  for name, config in runs:
    results[name], grid = train_config(name, config, real, eval_real, FLAGS.out)
    grids.append(img.label(grid, name))
    summary['configs'] = results
    with open(os.path.join(FLAGS.out, 'study.json'), 'w') as f:
      json.dump(summary, f, indent=1)
  gap = np.full((grids[0].shape[0], 6, 3), 255, np.uint8)
  img.save_png(
    os.path.join(FLAGS.out, 'grids.png'),
    np.concatenate(sum([[g, gap] for g in grids], [])[:-1], axis=1),
  )
  plot_json(FLAGS.out)
  print(f'Done in {time.perf_counter() - tick:.0f} s: {FLAGS.out}', flush=True)


if __name__ == '__main__':
  app.run(main)
