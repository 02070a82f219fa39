"""Procedural "synthetic faces": an offline stand-in dataset for face GANs.

Cartoon-like portraits drawn with PIL at CelebA's aligned size (218 high x 178
wide) and framed like CelebA's aligned crops (eyes near y~112, face filling the
central 160x160 square), so the same centre-crop-160 -> resize-64 pipeline used
for CelebA also works here. This is NOT CelebA and never claims to be.

Every image is a pure function of (seed, index): its randomness comes from
``np.random.default_rng([seed, index])``, so images are independent of the order
(or process) they are rendered in. Only numpy and PIL are used.

Attribute vector (float32, order = ATTRIBUTE_NAMES):
  continuous attributes are normalised to [0, 1] across their sampled range,
  except ``smile`` in [-1, 1] (frown .. big smile); ``hair_color`` is an index
  into HAIR_COLORS, ``hair_style`` an index into HAIR_STYLES, ``eye_color`` an
  index into EYE_COLORS; ``bangs``, ``glasses``, ``sunglasses`` are 0/1.
"""

import dataclasses

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HEIGHT = 218
WIDTH = 178

ATTRIBUTE_NAMES = (
  'skin_tone',
  'face_width',
  'face_height',
  'jaw_width',
  'offset_x',
  'offset_y',
  'scale',
  'hair_color',
  'hair_style',
  'bangs',
  'eye_color',
  'eye_spacing',
  'eyebrow_thickness',
  'smile',
  'mouth_open',
  'glasses',
  'sunglasses',
)
HAIR_COLORS = ('black', 'brown', 'blonde', 'red', 'gray')
HAIR_STYLES = ('bald', 'short', 'long')
EYE_COLORS = ('blue', 'green', 'brown', 'gray')

# Skin tone anchors from very light to very dark; tone t in [0,1] interpolates.
_SKIN = np.array(
  [[255, 226, 204], [241, 194, 160], [224, 172, 130], [198, 134, 94], [141, 85, 54], [92, 58, 38]],
  np.float64,
)
_HAIR_RGB = np.array(
  [[28, 22, 20], [92, 58, 36], [214, 178, 112], [158, 68, 34], [168, 166, 160]], np.float64
)
_HAIR_P = (0.3, 0.3, 0.18, 0.1, 0.12)
_EYE_RGB = np.array([[70, 120, 185], [80, 130, 80], [95, 60, 35], [120, 130, 140]], np.float64)
_EYE_P = (0.2, 0.15, 0.5, 0.15)

_RAMP_Y = np.linspace(0.0, 1.0, HEIGHT)[:, None, None]
_RAMP_X = np.linspace(0.0, 1.0, WIDTH)[None, :, None]
_YY, _XX = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
_T = np.linspace(-1.0, 1.0, 11)  # sample points along the mouth curves


def _c(rgb, alpha=0):
  """RGBA fill tuple. Alpha is abused as a "skin mask": 255 marks pixels that
  receive face shading later (alpha is blurred with the image, so the mask
  edge is soft for free)."""
  return tuple(max(0, min(255, int(v + 0.5))) for v in rgb) + (alpha,)


def _u(rng, lo, hi):
  """(value, normalised position in [0,1]) of a uniform draw in [lo, hi]."""
  r = rng.random()
  return lo + (hi - lo) * r, r


def _background(rng):
  """Muted two-colour background, flat or with a vertical/horizontal gradient."""
  gray = rng.uniform(50, 220)
  c0 = gray + (rng.uniform(0, 255, 3) - gray) * rng.uniform(0.15, 0.7)  # muted
  c1 = np.clip(c0 + rng.uniform(-60, 60, 3), 0, 255)
  kind = rng.integers(3)  # 0 flat, 1 vertical, 2 horizontal
  ramp = _RAMP_Y if kind == 1 else _RAMP_X
  line = np.zeros(ramp.shape[:2] + (4,), np.uint8)  # alpha 0 = not skin
  line[..., :3] = (c0 + (c1 - c0) * ramp if kind else c0) + 0.5
  # stretch the 1-pixel ramp with NEAREST: far cheaper than filling HxW in numpy
  return Image.fromarray(line, 'RGBA').resize((WIDTH, HEIGHT), Image.NEAREST)


@dataclasses.dataclass
class _Face:
  """What the drawing steps share: geometry (pixels at 218x178), colours,
  the features later steps place things by, and the attributes so far."""

  attrs: dict
  s: float = 0.0  # overall scale
  cx: float = 0.0  # face centre
  cy: float = 0.0
  fw: float = 0.0  # face half-width and half-height
  fh: float = 0.0
  jaw: float = 0.0
  chin: float = 0.0
  ey: float = 0.0  # eye line
  skin: np.ndarray = None
  shadow: np.ndarray = None
  hair: np.ndarray = None
  hair_index: int = 0
  style: int = 0  # index into HAIR_STYLES
  bangs: bool = False
  hv: float = 0.0  # hair volume beyond the face
  top: float = 0.0  # top of the hair mass
  ex: float = 0.0  # eye offset from the centre, eye half-size
  ew: float = 0.0
  eh: float = 0.0
  ny: float = 0.0  # nose tip


def _geometry(rng, f: _Face):
  a = f.attrs
  f.s, a['scale'] = _u(rng, 0.92, 1.08)
  jx, a['offset_x'] = _u(rng, -4.0, 4.0)
  jy, a['offset_y'] = _u(rng, -4.0, 4.0)
  fw, a['face_width'] = _u(rng, 38.0, 48.0)
  fh, a['face_height'] = _u(rng, 54.0, 64.0)
  f.fw, f.fh = fw * f.s, fh * f.s
  f.cx, f.cy = 89.0 + jx, 125.0 + jy
  f.jaw, a['jaw_width'] = _u(rng, 0.6, 0.86)
  f.chin = rng.uniform(0.97, 1.05)
  f.ey = f.cy - 0.2 * f.fh  # eye line ~ y 112 like CelebA's aligned landmarks


def _colours(rng, f: _Face):
  a = f.attrs
  tone, a['skin_tone'] = _u(rng, 0.0, 1.0)
  k = tone * (len(_SKIN) - 1)
  i0 = min(int(k), len(_SKIN) - 2)
  skin = _SKIN[i0] + (_SKIN[i0 + 1] - _SKIN[i0]) * (k - i0)
  f.skin = np.clip(skin * rng.uniform(0.95, 1.05, 3), 0, 255)
  f.shadow = f.skin * 0.82
  f.hair_index = hc = rng.choice(len(HAIR_COLORS), p=_HAIR_P)
  f.hair = np.clip(_HAIR_RGB[hc] * rng.uniform(0.8, 1.2) + rng.uniform(-12, 12, 3), 0, 255)
  a['hair_color'] = hc
  f.style = a['hair_style'] = rng.choice(3, p=(0.07, 0.5, 0.43))
  f.bangs = a['bangs'] = f.style != 0 and rng.random() < 0.35


def _draw_body(d, rng, f: _Face):
  """Long back hair, neck, clothing, ears.

  Order matters: neck before clothes so the clothing's top arc forms a
  collar; long-hair strands after clothes so they drape over the shoulders.
  """
  s, cx, cy, fw, fh, style = f.s, f.cx, f.cy, f.fw, f.fh, f.style
  sw, sy = rng.uniform(68, 92) * s, cy + fh + rng.uniform(-2, 10)
  f.hv = hv = (rng.uniform(4, 9) if style == 1 else rng.uniform(8, 16)) * s
  f.top = cy - fh - rng.uniform(4, 14) * s
  bottom = rng.uniform(cy + 0.85 * fh, 216.0)
  if style == 2:
    d.rounded_rectangle(
      (cx - fw - hv, cy - 0.4 * fh, cx + fw + hv, bottom), radius=14, fill=_c(f.hair)
    )
  nw = fw * rng.uniform(0.5, 0.62)
  d.rectangle((cx - nw, cy + 0.3 * fh, cx + nw, HEIGHT), fill=_c(f.shadow, 255))
  d.ellipse((cx - sw, sy, cx + sw, sy + 130), fill=_c(rng.uniform(15, 235, 3)))
  if rng.random() < 0.4:  # V-neckline
    d.polygon(
      [(cx - nw * 1.2, sy + 5), (cx + nw * 1.2, sy + 5), (cx, sy + rng.uniform(16, 30))],
      fill=_c(f.shadow, 255),
    )
  if style == 2 and bottom > sy + 4:  # strands in front of the shoulders
    for side in (-1, 1):
      xo, xi = cx + side * (fw + hv), cx + side * (nw + 1)
      d.rounded_rectangle((min(xo, xi), sy - 10, max(xo, xi), bottom), radius=6, fill=_c(f.hair))
  if style != 2:
    for side in (-1, 1):
      x = cx + side * fw * 0.97
      d.ellipse((x - 6 * s, f.ey - 4 * s, x + 6 * s, f.ey + 16 * s), fill=_c(f.skin * 0.9, 255))


def _draw_head(d, f: _Face):
  """The hair mass behind the head, then the face: ellipse + jaw polygon."""
  cx, cy, fw, fh, hv, chin, jaw = f.cx, f.cy, f.fw, f.fh, f.hv, f.chin, f.jaw
  if f.style != 0:
    d.ellipse((cx - fw - hv, f.top, cx + fw + hv, cy + 0.3 * fh), fill=_c(f.hair))
  d.ellipse((cx - fw, cy - fh, cx + fw, cy + fh * 0.9), fill=_c(f.skin, 255))
  d.polygon(
    [
      (cx - fw * 0.99, cy),
      (cx - fw * jaw, cy + 0.72 * fh),
      (cx - 0.28 * fw, cy + chin * fh * 0.97),
      (cx, cy + chin * fh),
      (cx + 0.28 * fw, cy + chin * fh * 0.97),
      (cx + fw * jaw, cy + 0.72 * fh),
      (cx + fw * 0.99, cy),
    ],
    fill=_c(f.skin, 255),
  )


def _draw_front_hair(d, rng, f: _Face):
  """The forehead above a (curved) hairline, with a jagged fringe for bangs."""
  if f.style == 0:
    return
  s, cx, cy, fw, fh, hv, top = f.s, f.cx, f.cy, f.fw, f.fh, f.hv, f.top
  hl = f.ey - (rng.uniform(15, 24) if f.bangs else rng.uniform(30, 42)) * s
  dip, asym = rng.uniform(6, 22) * s, rng.uniform(-8, 8) * s
  xs = np.linspace(-1.0, 1.0, 15)
  ys = hl + dip * xs**2 + asym * xs
  if f.bangs:
    ys = ys + np.where(np.arange(15) % 2 == 0, rng.uniform(2, 6) * s, 0.0)
  line = [(cx + x * (fw + 1), y) for x, y in zip(xs, ys)]
  # Closed along the upper arc of the hair mass ellipse.
  mid, half = (top + cy + 0.3 * fh) / 2, (cy + 0.3 * fh - top) / 2
  arc = [(cx + (fw + hv) * np.cos(t), mid - half * np.sin(t)) for t in np.linspace(0.0, np.pi, 9)]
  d.polygon(line + arc, fill=_c(f.hair))


def _draw_eyes(d, rng, f: _Face):
  """Eye whites, irises with a shared gaze, pupils, lids and brows."""
  a, s, cx, ey = f.attrs, f.s, f.cx, f.ey
  ex, a['eye_spacing'] = _u(rng, 16.0, 21.0)
  f.ex = ex = ex * s
  f.ew = ew = rng.uniform(7.5, 10.0) * s
  f.eh = eh = rng.uniform(3.6, 5.0) * s
  a['eye_color'] = eci = rng.choice(len(EYE_COLORS), p=_EYE_P)
  iris = _EYE_RGB[eci] * rng.uniform(0.85, 1.15)
  gaze = rng.uniform(-1.5, 1.5)
  bt, a['eyebrow_thickness'] = _u(rng, 1.5, 4.5)
  brow = f.hair * 0.75 if f.hair_index != 0 else f.hair
  by, arch = ey - rng.uniform(9, 13) * s, rng.uniform(1, 4) * s
  for side in (-1, 1):
    x0 = cx + side * ex
    d.ellipse((x0 - ew, ey - eh, x0 + ew, ey + eh), fill=_c((245, 245, 240), 255))
    ir = eh * 0.95
    d.ellipse((x0 + gaze - ir, ey - ir, x0 + gaze + ir, ey + ir), fill=_c(iris, 255))
    pr = ir * 0.45
    d.ellipse((x0 + gaze - pr, ey - pr, x0 + gaze + pr, ey + pr), fill=_c((15, 12, 12), 255))
    d.point((x0 + gaze - 1, ey - 1), fill=_c((255, 255, 255), 255))
    d.arc((x0 - ew, ey - eh, x0 + ew, ey + eh), 195, 345, fill=_c(f.skin * 0.35, 255), width=2)
    d.line(
      [
        (x0 - side * ew * 1.1, by + 2),
        (x0 + side * 0.1, by - arch),
        (x0 + side * ew * 1.25, by + 1.5),
      ],
      fill=_c(brow, 255),
      width=int(round(bt * s)),
      joint='curve',
    )


def _draw_nose(d, rng, f: _Face):
  """Bridge shading line, soft tip, nostrils."""
  s, cx, ey, skin = f.s, f.cx, f.ey, f.skin
  f.ny = ny = ey + rng.uniform(20, 26) * s
  side = rng.choice((-1, 1))
  d.line(
    [(cx + side * 4 * s, ey + 4), (cx + side * 5 * s, ny - 2)], fill=_c(skin * 0.85, 255), width=2
  )
  d.ellipse((cx - 6 * s, ny - 5 * s, cx + 6 * s, ny + 2 * s), fill=_c(skin * 0.93, 255))
  for side in (-1, 1):
    d.ellipse(
      (cx + side * 4 * s - 2, ny - 1, cx + side * 4 * s + 2, ny + 1.5), fill=_c(skin * 0.55, 255)
    )


def _draw_mouth(d, rng, f: _Face):
  """Lips curved from a frown (smile -1) to a big smile (+1), open or not."""
  a, s, cx = f.attrs, f.s, f.cx
  a['smile'] = smile = rng.uniform(-0.6, 1.0)
  my = f.ny + rng.uniform(14, 19) * s
  mw = rng.uniform(11, 16) * s * (1 + 0.15 * max(smile, 0))
  opening = max(0.0, rng.uniform(-4, 6) + 3 * smile) * s
  a['mouth_open'] = min(opening / 9.0, 1.0)
  lip = f.skin * 0.75 + np.array([180, 60, 70]) * 0.25 * rng.uniform(0.6, 1.3)
  bow = 1 - _T**2
  yc = my - smile * 5 * s * _T**2 + smile * 1.5 * s
  xs = cx + mw * _T
  up = yc - rng.uniform(2, 3.5) * s * np.sqrt(bow)
  lo = yc + opening * bow + rng.uniform(2.5, 4.5) * s * np.sqrt(bow)
  d.polygon(list(zip(xs, up)) + list(zip(xs[::-1], lo[::-1])), fill=_c(lip, 255))
  if opening > 1.5:
    inner = list(zip(xs, yc)) + list(zip(xs[::-1], (yc + opening * bow)[::-1]))
    d.polygon(inner, fill=_c((70, 25, 30), 255))
    teeth = list(zip(xs[2:-2], yc[2:-2])) + list(
      zip(xs[-3:1:-1], (yc + opening * bow * 0.5)[-3:1:-1])
    )
    d.polygon(teeth, fill=_c((240, 236, 225), 255))
  else:
    d.line(list(zip(xs, yc)), fill=_c(lip * 0.55, 255), width=1)


def _draw_glasses(d, rng, f: _Face):
  """Glasses on ~15% of faces, a third of them sunglasses."""
  a, s, cx, ey, ex = f.attrs, f.s, f.cx, f.ey, f.ex
  glasses = rng.random() < 0.15
  sun = glasses and rng.random() < 0.33
  a['glasses'], a['sunglasses'] = glasses, sun
  if not glasses:
    return
  frame = _c(rng.choice([(20, 20, 20), (90, 60, 30), (150, 150, 160)]))
  gw, gh = f.ew + rng.uniform(3, 6) * s, f.eh + rng.uniform(4, 7) * s
  for side in (-1, 1):
    x0 = cx + side * ex
    d.rounded_rectangle(
      (x0 - gw, ey - gh, x0 + gw, ey + gh),
      radius=gh * 0.7,
      outline=frame,
      width=2,
      fill=_c((25, 25, 30)) if sun else None,
    )
    d.line(
      [(x0 + side * gw, ey - gh * 0.4), (cx + side * f.fw * 0.99, ey - gh * 0.2)],
      fill=frame,
      width=2,
    )
  d.line([(cx - ex + gw, ey - 1), (cx + ex - gw, ey - 1)], fill=frame, width=2)


def _finish(img, rng, f: _Face) -> np.ndarray:
  """Blur (antialiasing), face shading from the soft skin mask, noise."""
  # BoxBlur, not GaussianBlur: ~4x cheaper on RGBA and visually the same here.
  img = img.filter(ImageFilter.BoxBlur(rng.uniform(0.5, 1.1)))
  bands = img.split()  # planar (H, W) bands: numpy is ~3x faster on them
  lx, ly = f.cx + rng.uniform(-0.6, 0.6) * f.fw, f.cy - 0.35 * f.fh
  r2 = ((_XX - lx) * (1.0 / (1.4 * f.fw))) ** 2 + ((_YY - ly) * (1.0 / (1.4 * f.fh))) ** 2
  shade = np.maximum(0.12 - 0.4 * r2, -0.35)  # highlight near the light
  shade *= np.asarray(bands[3]).astype(np.float32)
  shade *= 1.0 / 255.0
  shade += 1.0
  shade *= rng.uniform(0.92, 1.08)  # global exposure
  # Binomial(16, 1/2) noise from popcounts of random 16-bit words:
  # Gaussian-like (std 2 before scaling), pure integer arithmetic, so
  # identical on every (little-endian) platform, and ~10x cheaper than
  # standard_normal.
  bits = rng.integers(
    -(2**63), 2**63 - 1, size=HEIGHT * WIDTH * 3 // 4, dtype=np.int64, endpoint=True
  )
  noise = np.bitwise_count(bits.view(np.uint16)).reshape(3, HEIGHT, WIDTH).astype(np.float32)
  noise -= 8.0
  noise *= rng.uniform(0.5, 1.4)
  noise += 0.5  # round-half-up via truncation after clipping (values >= 0)
  chans = []
  for c in range(3):
    x = np.asarray(bands[c]).astype(np.float32)
    x *= shade
    x += noise[c]
    np.clip(x, 0, 255, out=x)
    chans.append(Image.fromarray(x.astype(np.uint8)))
  return np.array(Image.merge('RGB', chans))


def render_face(seed, index):
  """Renders image `index` of the synthetic dataset with base `seed`.

  Args:
    seed: Non-negative int, base seed of the dataset.
    index: Non-negative int, image index within the dataset.

  Returns:
    (image, attributes): uint8 array (218, 178, 3) and float32 vector of
    length len(ATTRIBUTE_NAMES). Same (seed, index) -> identical bytes.
  """
  rng = np.random.default_rng([int(seed), int(index)])
  f = _Face(attrs={})
  img = _background(rng)
  d = ImageDraw.Draw(img)
  # Every step draws from rng in turn: their order fixes every image.
  _geometry(rng, f)
  _colours(rng, f)
  _draw_body(d, rng, f)
  _draw_head(d, f)
  _draw_front_hair(d, rng, f)
  _draw_eyes(d, rng, f)
  _draw_nose(d, rng, f)
  _draw_mouth(d, rng, f)
  _draw_glasses(d, rng, f)
  out = _finish(img, rng, f)
  attrs = np.array([float(f.attrs[n]) for n in ATTRIBUTE_NAMES], np.float32)
  return out, attrs
