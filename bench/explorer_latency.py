"""How fast the explorer answers: python bench/explorer_latency.py --checkpoint=runs/celeba64.

Times the explorer's requests through Flask's test client (the whole request:
JSON parsing, G in inference mode, PNG encoding; no network): a slider move
(/api/render of one latent), a direction slider move (/api/direction, one
amount), a blend step (/api/slerp), a new 16-face grid
(/api/latents) and a photo projection (/api/project). Prints the median and
the 95th percentile of --repeats requests each, after one warm-up request.
"""

import io
import os
import sys
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app
from absl import flags

flags.DEFINE_string('checkpoint', None, 'Run directory or checkpoint prefix.')
flags.DEFINE_integer('repeats', 50, 'Requests timed per kind.')
flags.DEFINE_string(
  'photo', 'tests/data/celeba/img_align_celeba/000001.jpg', 'Photo for the projection timing.'
)
flags.mark_flag_as_required('checkpoint')
FLAGS = flags.FLAGS


def main(argv):
  del argv
  import numpy as np
  from explorer.app import create_app
  from models import directions
  from training import checkpoints

  config, run_dir, generator = checkpoints.load_generator(FLAGS.checkpoint)
  edits = directions.cached_directions(run_dir, generator, config)
  client = create_app(generator, config, directions=edits).test_client()
  z = np.random.default_rng(0).standard_normal((2, config.latent_dim)).tolist()
  with open(FLAGS.photo, 'rb') as f:
    photo = f.read()
  requests = {
    'slider move (/api/render, 1 face)': lambda i: client.post(
      '/api/render', json=dict(latents=[z[0]])
    ),
    'direction slider move (/api/direction, 1 face)': lambda i: client.post(
      '/api/direction', json=dict(latent=z[0], index=i % len(edits.vectors), amounts=[1.5])
    ),
    'blend step (/api/slerp)': lambda i: client.post(
      '/api/slerp', json=dict(z1=z[0], z2=z[1], t=(i % 100) / 100)
    ),
    'new faces (/api/latents, 16)': lambda i: client.post('/api/latents', json=dict(seed=i, n=16)),
    'photo projection (/api/project, 150 steps)': lambda i: client.post(
      '/api/project', data=dict(file=(io.BytesIO(photo), 'face.jpg'))
    ),
  }
  print(
    f'{config.image_height}x{config.image_width}, {os.cpu_count()} CPU '
    f'threads, {FLAGS.repeats} requests each (projection: 3)'
  )
  for name, request in requests.items():
    assert request(0).status_code == 200  # warm-up: traces the functions
    seconds = []
    for i in range(3 if 'projection' in name else FLAGS.repeats):
      tick = time.perf_counter()
      assert request(i + 1).status_code == 200
      seconds.append(time.perf_counter() - tick)
    print(
      f'{name:45s} median {1e3 * np.median(seconds):7.1f} ms, p95 '
      f'{1e3 * np.percentile(seconds, 95):7.1f} ms',
      flush=True,
    )


if __name__ == '__main__':
  app.run(main)
