"""Why does a recipe collapse on real faces? Change one thing at a time.

python bench/study_collapse.py --data_dir=<CelebA folder> \
    --recipe=celeba48_instance_noise --steps=150 --out=runs/study_collapse

Every variant trains the recipe from the same seed on the same batches of
the train partition (decoded once, held in memory) for --steps steps, logs
mean D(x) and D(G(z)) every --log_every steps, and ends with the SWD of N
EMA-generator samples against N held-out faces (valid + test partitions:
identities never trained on) and a 6x6 grid. Variants differ from the recipe
by the fields listed in VARIANTS (or --variants=name,...); --recipes trains
recipe flagfiles instead. Writes <out>/study.jsonl (one record per variant,
appended), <out>/<variant>.png and <out>/floor_<size>_crop<crop>.json (train vs
held-out SWD at the same N).
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

from configs import definitions

flags.DEFINE_string(
  'data_dir', None, 'CelebA folder, official layout with list_eval_partition.txt.'
)
flags.DEFINE_string(
  'recipe',
  'celeba48_instance_noise',
  'Recipe flagfile '
  '(flags/<name>.cfg) the variants start from; '
  'samples and SWD come from an EMA copy of G (decay '
  '0.999), which leaves training unchanged.',
)
flags.DEFINE_integer('steps', 300, 'Training steps per variant.')
flags.DEFINE_integer('log_every', 25, 'Steps between D(x), D(G(z)) records.')
flags.DEFINE_integer('num_eval', 1024, 'N for SWD (generated and held-out).')
flags.DEFINE_list('variants', [], 'Subset of VARIANTS (default: all).')
flags.DEFINE_list(
  'recipes',
  [],
  'Recipe flagfiles (flags/<name>.cfg) to train instead of the variants, each at its own size.',
)
flags.DEFINE_string('out', 'runs/study_collapse', 'Output folder.')
flags.mark_flag_as_required('data_dir')
FLAGS = flags.FLAGS

AUGMENT = dict(diffaugment='color,translation,cutout', x_flip=True)
# One change each from the recipe; the last rows add the small-data fixes.
VARIANTS = {
  'recipe': {},
  'beta1=0.5': dict(g_beta1=0.5, d_beta1=0.5),
  'd_filters_half': 'half',
  'd_dropout=0': dict(d_dropout=0.0),
  'no_instance_noise': dict(instance_noise='none'),
  'd_lr=g_lr': 'equal_lr',
  'batch=64': dict(batch_size=64),
  'd_batch_norm=on': dict(d_batch_norm='on'),
  'd_batch_norm=off': dict(d_batch_norm='off'),
  'x_flip': dict(x_flip=True),
  'diffaugment+flip': AUGMENT,
  'beta1=0.5+diffaugment+flip': dict(g_beta1=0.5, d_beta1=0.5, **AUGMENT),
}


def variant_config(name):
  base = dataclasses.replace(recipe_config(FLAGS.recipe), ema_decay=0.999)
  change = VARIANTS[name]
  if change == 'half':
    change = dict(d_filters=base.d_filters // 2)
  elif change == 'equal_lr':
    change = dict(d_lr=base.g_lr)
  return dataclasses.replace(base, **change).validate()


def recipe_config(name):
  """The Config a recipe flagfile gives train.py, on this study's data."""
  values = flags.FlagValues()
  definitions.define_config_flags(values)
  flags.DEFINE_string('workdir', None, 'Run directory.', flag_values=values)
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  values(
    [
      'prog',
      f'--flagfile={root}/flags/{name}.cfg',
      f'--data_dir={FLAGS.data_dir}',
      '--dataset=celeba',
    ]
  )
  return definitions.config_from_flags(values)


_LOADED = {}


def load(config, split):
  """Every image of `split`, cropped and resized as training does (uint8)."""
  from data import pipeline

  key = (config.image_height, config.image_width, config.crop, split)
  if key not in _LOADED:
    c = dataclasses.replace(config, split=split, cache='memory', batch_size=1)
    _LOADED[key] = pipeline.Pipeline(c).cached_images()
  return _LOADED[key]


def train(name, config, real, held):
  """Trains one variant; returns its record."""
  import keras
  import numpy as np
  import tensorflow as tf
  from common import files
  from metrics import evaluation
  from models.gan import GAN
  from pictures import images as img

  keras.utils.set_random_seed(config.seed)
  gan = GAN(config)
  train_step = tf.function(gan.step_fn)
  rng = np.random.default_rng(config.seed)  # the same batches for every variant
  order, pos, curve = rng.permutation(len(real)), 0, []
  tick = time.perf_counter()
  for step in range(1, FLAGS.steps + 1):
    if pos + config.batch_size > len(order):
      order, pos = rng.permutation(len(real)), 0
    batch = real[order[pos : pos + config.batch_size]]
    pos += config.batch_size
    out = train_step(files.to_float(tf.constant(batch)))
    if step % FLAGS.log_every == 0:
      curve.append(
        dict(
          step=step,
          **{k: round(float(out[k]), 4) for k in ('d_real', 'd_fake', 'd_loss', 'g_loss')},
        )
      )
      print(name, curve[-1], flush=True)
  seconds = time.perf_counter() - tick
  fake = evaluation.generate_images(gan.sample, config, len(held), config.seed)
  swd = evaluation.compute_metrics(fake, held, ['swd'], config.seed)['swd']
  img.save_png(os.path.join(FLAGS.out, f'{name}.png'), img.make_grid(fake[:36]))
  tail = curve[len(curve) // 2 :]  # the second half of the run
  return dict(
    variant=name,
    change=VARIANTS.get(name, 'recipe flagfile'),
    steps=FLAGS.steps,
    train_seconds=round(seconds, 1),
    swd=swd,
    d_fake_second_half=float(np.mean([c['d_fake'] for c in tail])),
    d_real_second_half=float(np.mean([c['d_real'] for c in tail])),
    curve=curve,
  )


def main(argv):
  del argv
  from metrics import evaluation

  os.makedirs(FLAGS.out, exist_ok=True)
  if FLAGS.recipes:
    runs = [(f'recipe:{n}', recipe_config(n)) for n in FLAGS.recipes]
  else:
    runs = [(n, variant_config(n)) for n in FLAGS.variants or VARIANTS]
  floors = {}
  for name, config in runs:
    real = load(config, 'train')
    held = load(config, 'heldout')[: FLAGS.num_eval]
    # The floor depends on the crop too (the 64x64 recipes use 160 and 108).
    size = f'{config.image_height}x{config.image_width}_crop{config.crop}'
    if size not in floors:
      floors[size] = evaluation.compute_metrics(real[: FLAGS.num_eval], held, ['swd'], config.seed)[
        'swd'
      ]
      with open(os.path.join(FLAGS.out, f'floor_{size}.json'), 'w') as f:
        json.dump(dict(num_eval=FLAGS.num_eval, num_train=len(real), swd=floors[size]), f)
      print(
        f'{size}: {len(real)} train faces; floor (train vs held-out, N='
        f'{FLAGS.num_eval}) {floors[size]["avg"]:.2f}',
        flush=True,
      )
    floor = floors[size]
    record = train(name.replace(':', '_'), config, real, held)
    record['floor'] = floor['avg']
    with open(os.path.join(FLAGS.out, 'study.jsonl'), 'a') as f:
      f.write(json.dumps(record) + '\n')
    print(
      f'RESULT {name}: SWD {record["swd"]["avg"]:.1f} (floor '
      f'{floor["avg"]:.1f}), mean D(G(z)) over the second half '
      f'{record["d_fake_second_half"]:.3f}',
      flush=True,
    )


if __name__ == '__main__':
  app.run(main)
