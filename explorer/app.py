"""The explorer's web app: a trained generator behind a small JSON API.

`create_app(generator, config)` returns a Flask app serving explorer/page.html
and these endpoints (JSON in and out, images as PNG data URLs):

  GET  /api/info      the run's latent size, image size and latent distribution
  POST /api/latents   {seed, n, truncation}: n latents (generate.py's grid stream)
  POST /api/render    {latents: [[...], ...]}: their images
  POST /api/slerp     {z1, z2, t}: the latent at t on the slerp path, its image
  GET  /api/directions the run's edit directions (GANSpace, models.directions):
                      {vectors, variance}, orthonormal, by decreasing variance
  POST /api/direction {latent, index, amounts}: the latent moved by each
                      amount along direction `index`, and their images
  POST /api/npy       {latent}: the latent as a .npy file
  POST /api/latent    a .npy upload (field "file"): the latent and its image
  POST /api/project   a photo upload (field "file"): the cropped photo, its
                      latent, the reconstruction and the RMS error

A bad request gets a 400 with {"error": "..."} and the server goes on. No
request names a path: uploads are read from memory, never saved.

The page is for the browser of the user who started it, so it refuses what a
web page elsewhere could make that browser send: a request whose Host header
names anything but an IP address, localhost or the machine itself (a DNS
rebinding page), and a POST whose Origin is another site. A photo upload is
decoded no larger than the run needs, one at a time: a second one meanwhile
gets a 503 "busy" reply instead of waiting in a queue.
"""

import base64
import io
import ipaddress
import math
import socket
import threading
from urllib import parse

import flask
import numpy as np
import tensorflow as tf
from PIL import Image

from configs import definitions
from configs.presets import Config
from data import photos
from models import latents
from models import projection
from models import streams

MAX_LATENTS = 256  # per request: a page never needs more
MAX_AMOUNT = 10.0  # how far /api/direction moves a latent, either way
IDLE_TIMEOUT = 30.0  # seconds a connection may send nothing


class BadRequest(ValueError):
  """A request the explorer refuses; the message is shown in the page."""


def host_allowed(host: str, names) -> bool:
  """Whether a Host header ('name[:port]') is an IP literal or in `names`.

  A DNS rebinding page reaches the server under the attacker's own domain
  name; an IP address or a name of this machine cannot be that.
  """
  name = host.lower()
  if name.startswith('['):  # [v6]:port
    name = name[1 : name.find(']')] if ']' in name else ''
  elif name.count(':') == 1:
    name = name.rsplit(':', 1)[0]
  try:
    ipaddress.ip_address(name)
    return True
  except ValueError:
    return name in names


def read_latent_file(data: bytes, dim: int) -> np.ndarray:
  """The float32 (dim,) latent in the bytes of a .npy file.

  The header is read first, so an absurd shape is refused before any
  memory is spent on it.
  """
  f = io.BytesIO(data)
  if data[:2] == b'PK':
    raise BadRequest('The file is a .npz archive: upload one .npy array (np.save writes them).')
  readers = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
  }
  try:
    shape, _, dtype = readers[np.lib.format.read_magic(f)](f)
  except (KeyError, ValueError, EOFError) as e:
    raise BadRequest('The file is not a .npy array (np.save writes them).') from e
  if math.prod(shape) != dim or dtype.kind not in 'fiu':
    raise BadRequest(
      f"The latent must hold {dim} numbers (this run's latent "
      f'size), got a {dtype} array of shape {list(shape)}.'
    )
  try:
    return np.load(io.BytesIO(data), allow_pickle=False).reshape(-1)
  except (ValueError, OSError, EOFError) as e:  # truncated data
    raise BadRequest(f'The .npy file is damaged ({e}).') from e


def body() -> dict:
  """The request's JSON object, or BadRequest."""
  try:
    data = flask.request.get_json(silent=True)
  except RecursionError:
    data = None
  if not isinstance(data, dict):
    raise BadRequest('The request body must be a JSON object.')
  return data


def number(data: dict, key: str, default, kind=float, low=None, high=None):
  """data[key] as a finite `kind` in [low, high] (None stays None)."""
  value = data.get(key, default)
  try:
    value = kind(value) if value is not None else None
    if value is not None and not math.isfinite(value):
      raise ValueError
  except (TypeError, ValueError, OverflowError):
    raise BadRequest(f'{key} must be a finite number.') from None
  if value is not None and (
    (low is not None and value < low) or (high is not None and value > high)
  ):
    raise BadRequest(f'{key} must be in [{low}, {high}], got {value}.')
  return value


def upload() -> bytes:
  """The bytes of the uploaded file (form field "file"), or BadRequest."""
  file = flask.request.files.get('file')
  data = file.read(photos.MAX_BYTES + 1) if file is not None else b''
  if not data:
    raise BadRequest('No file was uploaded (form field "file"), or it is empty.')
  return data


def refuse_foreign_pages(host_names):
  """A 403 reply for a request another web page may have made, else None."""
  host = flask.request.host
  if not host_allowed(host, host_names):
    return flask.jsonify(
      error=f'Host {host!r} refused: open the page by the address explore.py printed.'
    ), 403
  origin = flask.request.headers.get('Origin')
  if (
    flask.request.method not in ('GET', 'HEAD')
    and origin is not None
    and parse.urlsplit(origin).netloc.lower() != host.lower()
  ):
    return flask.jsonify(
      error=f'A request from the page {origin!r} was '
      "refused: only the explorer's own page may send "
      'requests.'
    ), 403
  return None


def make_server(app: flask.Flask, host: str, port: int, idle_timeout: float = IDLE_TIMEOUT):
  """A threaded werkzeug server for `app` that closes idle connections."""
  from werkzeug import serving

  class Handler(serving.WSGIRequestHandler):
    timeout = idle_timeout  # socketserver sets it on each connection

  return serving.make_server(host, port, app, threaded=True, request_handler=Handler)


def png_data_url(image: np.ndarray) -> str:
  """A uint8 (H, W, 3) image as a data:image/png URL."""
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, format='PNG')
  return 'data:image/png;base64,' + base64.b64encode(buf.getvalue()).decode()


class Explorer:
  """What the explorer's routes do, apart from HTTP: render, check, project.

  Args:
    generator: the run's G.
    config: the run's config.
    project_steps: Adam steps of a photo projection.
  """

  def __init__(self, generator, config: Config, project_steps: int, directions=None):
    self.config, self.dim, self.project_steps = config, config.latent_dim, project_steps
    self.directions = directions
    self.lock = threading.Lock()  # one render at a time: bounded memory
    # One photo decode and projection at a time; they run outside `lock`, so
    # slider moves are not queued behind a projection.
    self.upload_slot = threading.Semaphore(1)
    self.render_fn = tf.function(lambda z: generator(z, training=False), reduce_retracing=True)

  def render(self, z: np.ndarray) -> list:
    """PNG data URLs of G's images of the latents `z`."""
    with self.lock:
      images = latents.render(self.render_fn, z)
    return [png_data_url(x) for x in images]

  def latent_array(self, value, name: str, many: bool = False) -> np.ndarray:
    """`value` as float32 latents of this run, or BadRequest saying why."""
    dim = self.dim
    try:
      z = np.asarray(value, np.float32)
    except (TypeError, ValueError, OverflowError, RecursionError):
      raise BadRequest(f'{name} must be numbers.') from None
    shape = (z.shape[0] if z.ndim == 2 else -1, dim) if many else (dim,)
    if z.shape != shape or (many and not 0 < len(z) <= MAX_LATENTS):
      want = f'a list of 1-{MAX_LATENTS} lists of' if many else 'a list of'
      raise BadRequest(
        f"{name} must be {want} {dim} numbers (this run's latent size), got shape {list(z.shape)}."
      )
    if not np.all(np.isfinite(z)):
      raise BadRequest(f'{name} holds NaN or infinite values.')
    return z

  def new_latents(self, data: dict) -> dict:
    """Fresh latents of a seed (optionally truncated) and their images."""
    seed = number(data, 'seed', 0, int, 0, 2**31 - 1)
    n = number(data, 'n', 16, int, 1, MAX_LATENTS)
    truncation = number(data, 'truncation', None, float, 0.05, 10.0)
    try:
      z = latents.sample_latents(self.config, n, seed, streams.GRID, truncation)
    except latents.LatentError as e:
      raise BadRequest(str(e)) from e
    return dict(latents=z.tolist(), images=self.render(z))

  def slerp(self, data: dict) -> dict:
    """The latent at t on the great circle from z1 to z2, and its image."""
    z1 = self.latent_array(data.get('z1'), 'z1')
    z2 = self.latent_array(data.get('z2'), 'z2')
    t = number(data, 't', 0.5, float, 0.0, 1.0)
    z = latents.slerp(z1, z2, [t])[0].astype(np.float32)
    return dict(latent=z.tolist(), image=self.render(z[None])[0])

  def move(self, data: dict) -> dict:
    """The latent moved by each of `amounts` along direction `index`."""
    if self.directions is None:
      raise BadRequest('This explorer was started without edit directions.')
    z = self.latent_array(data.get('latent'), 'latent')
    count = len(self.directions.vectors)
    index = number(data, 'index', None, int, 0, count - 1)
    if index is None or isinstance(data.get('index'), (bool, float)):
      raise BadRequest(f'index must be a whole number in [0, {count - 1}].')
    amounts = data.get('amounts')
    if not isinstance(amounts, list) or not 0 < len(amounts) <= MAX_LATENTS:
      raise BadRequest(f'amounts must be a list of 1-{MAX_LATENTS} numbers.')
    bounds = (None, float, -MAX_AMOUNT, MAX_AMOUNT)
    steps = [number(dict(amounts=a), 'amounts', *bounds) for a in amounts]
    if None in steps:
      raise BadRequest('amounts must be numbers, not null.')
    moved = z + np.asarray(steps, np.float32)[:, None] * self.directions.vectors[index]
    return dict(latents=moved.tolist(), images=self.render(moved))

  def project(self, photo: bytes) -> dict:
    """The latent whose image is closest to an uploaded photo; 503 if busy."""
    if not self.upload_slot.acquire(blocking=False):
      flask.abort(503)
    try:
      config = self.config
      target = photos.prepare(photos.decode(photo, 'The upload', config), config)
      result = projection.project(
        self.render_fn, target, self.dim, config.latent_dist, starts=4, steps=self.project_steps
      )
    finally:
      self.upload_slot.release()
    return dict(
      photo=png_data_url(target),
      latent=result.z.tolist(),
      image=png_data_url(result.image),
      rmse=round(result.rms, 2),
    )


def _add_error_handlers(app: flask.Flask) -> None:
  """Every refusal as JSON {error: one sentence} with its HTTP status."""

  @app.errorhandler(BadRequest)
  @app.errorhandler(photos.PhotoError)
  def bad_request(e):
    return flask.jsonify(error=str(e)), 400

  @app.errorhandler(503)
  def busy(e):
    del e
    return flask.jsonify(
      error='The explorer is busy with another photo: try again when it is done.'
    ), 503

  @app.errorhandler(413)
  def too_large(e):
    del e
    return flask.jsonify(error=f'The upload is over the {photos.MAX_BYTES // 2**20} MB limit.'), 413


def _add_edit_routes(app: flask.Flask, explorer: Explorer) -> None:
  """The routes that move, save, load or project a latent."""

  @app.get('/api/directions')
  def list_directions():
    directions = explorer.directions
    if directions is None:
      return flask.jsonify(vectors=[], variance=[])
    return flask.jsonify(vectors=directions.vectors.tolist(), variance=directions.variance.tolist())

  @app.post('/api/direction')
  def move():
    return flask.jsonify(explorer.move(body()))

  @app.post('/api/npy')
  def npy():
    z = explorer.latent_array(body().get('latent'), 'latent')
    buf = io.BytesIO()
    np.save(buf, z)
    return flask.Response(
      buf.getvalue(),
      mimetype='application/octet-stream',
      headers={'Content-Disposition': 'attachment; filename="latent.npy"'},
    )

  @app.post('/api/latent')
  def load_latent():
    z = explorer.latent_array(read_latent_file(upload(), explorer.dim), 'The latent')
    return flask.jsonify(latent=z.tolist(), image=explorer.render(z[None])[0])

  @app.post('/api/project')
  def project():
    return flask.jsonify(explorer.project(upload()))


def create_app(
  generator,
  config: Config,
  run_name: str = '',
  project_steps: int = definitions.EXPLORER_PROJECTION_STEPS,
  host: str = '127.0.0.1',
  directions=None,
) -> flask.Flask:
  """The Flask app exploring `generator` (a Keras G of `config`'s run).

  Args:
    generator: the run's G.
    config: the run's config.
    run_name: shown in the page.
    project_steps: Adam steps of a photo projection.
    host: the name or address the server listens on; a Host header may
      name it, localhost, this machine's name or any IP address.
    directions: the run's models.directions.Directions, or None (the page
      then shows no direction sliders).
  """
  app = flask.Flask(__name__, static_folder=None)
  # Flask refuses larger bodies with a 413 before reading them.
  app.config['MAX_CONTENT_LENGTH'] = photos.MAX_BYTES + 64 * 1024
  host_names = {'localhost', host.lower(), socket.gethostname().lower()}
  app.before_request(lambda: refuse_foreign_pages(host_names))
  _add_error_handlers(app)
  explorer = Explorer(generator, config, project_steps, directions)

  @app.get('/')
  def page():
    return flask.send_from_directory(app.root_path, 'page.html')

  @app.get('/api/info')
  def info():
    return flask.jsonify(
      latent_dim=config.latent_dim,
      latent_dist=config.latent_dist,
      height=config.image_height,
      width=config.image_width,
      run=run_name,
    )

  @app.post('/api/latents')
  def new_latents():
    return flask.jsonify(explorer.new_latents(body()))

  @app.post('/api/render')
  def render_latents():
    z = explorer.latent_array(body().get('latents'), 'latents', many=True)
    return flask.jsonify(images=explorer.render(z))

  @app.post('/api/slerp')
  def slerp():
    return flask.jsonify(explorer.slerp(body()))

  _add_edit_routes(app, explorer)
  return app
