"""Input-pipeline throughput (images/s) of data.pipeline, without training.

python bench/input_pipeline.py --preset=celeba64 \
    --sources=jpeg,synthetic,synthetic_cached[,folder] [--data_dir=DIR]

jpeg: a temporary folder of CelebA-sized (178x218) JPEGs, written from the
synthetic renderer; folder: --data_dir as an image folder (e.g. the 4,900
half-size CelebA faces); synthetic: faces rendered on the fly;
*_cached: the same with --cache=memory (timed after the caching pass).
Prints the median over --repeats passes of --batches batches each.
"""

import os
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags

from configs import presets

flags.DEFINE_string('preset', 'celeba64', 'Preset whose crop/size/batch to use.')
flags.DEFINE_list(
  'sources', ['jpeg', 'jpeg_cached', 'synthetic', 'synthetic_cached'], 'What to read.'
)
flags.DEFINE_string('data_dir', '', 'Image folder for the folder source.')
flags.DEFINE_integer('num_images', 2048, 'Images written for the jpeg source.')
flags.DEFINE_integer('batches', 24, 'Batches per timed pass.')
flags.DEFINE_integer('repeats', 3, 'Timed passes (median reported).')
FLAGS = flags.FLAGS


def write_jpegs(folder, n):
  """n 178x218 JPEGs (quality 95, like CelebA's) from the synthetic renderer."""
  from PIL import Image
  from data import synthetic

  for i in range(n):
    image, _ = synthetic.render_face(0, i)
    Image.fromarray(image).save(os.path.join(folder, f'{i:06d}.jpg'), quality=95)


def main(argv):
  del argv
  import numpy as np
  from data import pipeline

  tmp = tempfile.mkdtemp(prefix='facegan-bench-')
  if any(s.startswith('jpeg') for s in FLAGS.sources):
    write_jpegs(tmp, FLAGS.num_images)
  where = {
    'jpeg': dict(dataset='folder', data_dir=tmp),
    'folder': dict(dataset='folder', data_dir=FLAGS.data_dir),
    'synthetic': dict(dataset='synthetic', synthetic_size=FLAGS.num_images),
  }
  for source in FLAGS.sources:
    base, _, cached = source.partition('_')
    config = presets.get_config(FLAGS.preset, cache='memory' if cached else '', **where[base])
    pipe = pipeline.Pipeline(config)
    rates = []
    for r in range(FLAGS.repeats):
      tick, n = time.perf_counter(), 0
      for _, images in pipe.epoch(r).take(FLAGS.batches):
        n += int(images.shape[0])
      rates.append(n / (time.perf_counter() - tick))
    print(
      f'{FLAGS.preset} {source:>17}: median {np.median(rates):7.1f} img/s '
      f'(min {min(rates):.1f}, max {max(rates):.1f}; {pipe.size} images)',
      flush=True,
    )


if __name__ == '__main__':
  app.run(main)
