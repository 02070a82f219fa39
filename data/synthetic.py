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

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HEIGHT = 218
WIDTH = 178

ATTRIBUTE_NAMES = (
    "skin_tone", "face_width", "face_height", "jaw_width", "offset_x", "offset_y",
    "scale", "hair_color", "hair_style", "bangs", "eye_color", "eye_spacing",
    "eyebrow_thickness", "smile", "mouth_open", "glasses", "sunglasses",
)
HAIR_COLORS = ("black", "brown", "blonde", "red", "gray")
HAIR_STYLES = ("bald", "short", "long")
EYE_COLORS = ("blue", "green", "brown", "gray")

# Skin tone anchors from very light to very dark; tone t in [0,1] interpolates.
_SKIN = np.array([[255, 226, 204], [241, 194, 160], [224, 172, 130],
                  [198, 134, 94], [141, 85, 54], [92, 58, 38]], np.float64)
_HAIR_RGB = np.array([[28, 22, 20], [92, 58, 36], [214, 178, 112],
                      [158, 68, 34], [168, 166, 160]], np.float64)
_HAIR_P = (0.3, 0.3, 0.18, 0.1, 0.12)
_EYE_RGB = np.array([[70, 120, 185], [80, 130, 80], [95, 60, 35], [120, 130, 140]],
                    np.float64)
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
    return Image.fromarray(line, "RGBA").resize((WIDTH, HEIGHT), Image.NEAREST)


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
    a = {}
    img = _background(rng)
    d = ImageDraw.Draw(img)

    # --- geometry (pixels at 218x178; CelebA-like framing) ---
    s, a["scale"] = _u(rng, 0.92, 1.08)
    jx, a["offset_x"] = _u(rng, -4.0, 4.0)
    jy, a["offset_y"] = _u(rng, -4.0, 4.0)
    fw, a["face_width"] = _u(rng, 38.0, 48.0)
    fh, a["face_height"] = _u(rng, 54.0, 64.0)
    fw, fh = fw * s, fh * s
    cx, cy = 89.0 + jx, 125.0 + jy
    jaw, a["jaw_width"] = _u(rng, 0.6, 0.86)
    chin = rng.uniform(0.97, 1.05)
    ey = cy - 0.2 * fh  # eye line ~ y 112 like CelebA's aligned landmarks

    # --- colours ---
    tone, a["skin_tone"] = _u(rng, 0.0, 1.0)
    k = tone * (len(_SKIN) - 1)
    i0 = min(int(k), len(_SKIN) - 2)
    skin = _SKIN[i0] + (_SKIN[i0 + 1] - _SKIN[i0]) * (k - i0)
    skin = np.clip(skin * rng.uniform(0.95, 1.05, 3), 0, 255)
    shadow = skin * 0.82
    hc = rng.choice(len(HAIR_COLORS), p=_HAIR_P)
    hair = np.clip(_HAIR_RGB[hc] * rng.uniform(0.8, 1.2) + rng.uniform(-12, 12, 3), 0, 255)
    a["hair_color"] = hc
    style = rng.choice(3, p=(0.07, 0.5, 0.43))
    a["hair_style"] = style
    bangs = style != 0 and rng.random() < 0.35
    a["bangs"] = bangs

    # --- long back hair, neck, clothing, ears ---
    # Order matters: neck before clothes so the clothing's top arc forms a
    # collar; long-hair strands after clothes so they drape over the shoulders.
    sw, sy = rng.uniform(68, 92) * s, cy + fh + rng.uniform(-2, 10)
    hv = rng.uniform(4, 9) * s if style == 1 else rng.uniform(8, 16) * s  # hair volume
    top = cy - fh - rng.uniform(4, 14) * s  # top of the hair mass
    bottom = rng.uniform(cy + 0.85 * fh, 216.0)
    hair_box = (cx - fw - hv, cy - 0.4 * fh, cx + fw + hv, bottom)
    if style == 2:
        d.rounded_rectangle(hair_box, radius=14, fill=_c(hair))
    nw = fw * rng.uniform(0.5, 0.62)
    d.rectangle((cx - nw, cy + 0.3 * fh, cx + nw, HEIGHT), fill=_c(shadow, 255))
    d.ellipse((cx - sw, sy, cx + sw, sy + 130), fill=_c(rng.uniform(15, 235, 3)))
    if rng.random() < 0.4:  # V-neckline
        d.polygon([(cx - nw * 1.2, sy + 5), (cx + nw * 1.2, sy + 5), (cx, sy + rng.uniform(16, 30))],
                  fill=_c(shadow, 255))
    if style == 2 and bottom > sy + 4:  # strands falling in front of the shoulders
        for side in (-1, 1):
            xo, xi = cx + side * (fw + hv), cx + side * (nw + 1)
            d.rounded_rectangle((min(xo, xi), sy - 10, max(xo, xi), bottom), radius=6, fill=_c(hair))
    if style != 2:
        for side in (-1, 1):
            ex_ = cx + side * fw * 0.97
            d.ellipse((ex_ - 6 * s, ey - 4 * s, ex_ + 6 * s, ey + 16 * s), fill=_c(skin * 0.9, 255))

    # --- hair mass behind the head, then the face (ellipse + jaw polygon) ---
    if style != 0:
        d.ellipse((cx - fw - hv, top, cx + fw + hv, cy + 0.3 * fh), fill=_c(hair))
    d.ellipse((cx - fw, cy - fh, cx + fw, cy + fh * 0.9), fill=_c(skin, 255))
    d.polygon([(cx - fw * 0.99, cy), (cx - fw * jaw, cy + 0.72 * fh), (cx - 0.28 * fw, cy + chin * fh * 0.97),
               (cx, cy + chin * fh), (cx + 0.28 * fw, cy + chin * fh * 0.97),
               (cx + fw * jaw, cy + 0.72 * fh), (cx + fw * 0.99, cy)], fill=_c(skin, 255))

    # --- front hair: region of the forehead above a (curved) hairline ---
    if style != 0:
        hl = ey - (rng.uniform(15, 24) if bangs else rng.uniform(30, 42)) * s
        dip, asym = rng.uniform(6, 22) * s, rng.uniform(-8, 8) * s
        xs = np.linspace(-1.0, 1.0, 15)
        ys = hl + dip * xs ** 2 + asym * xs
        if bangs:  # jagged fringe strands
            ys = ys + np.where(np.arange(15) % 2 == 0, rng.uniform(2, 6) * s, 0.0)
        line = [(cx + x * (fw + 1), y) for x, y in zip(xs, ys)]
        # close the polygon along the upper arc of the hair mass ellipse
        arc = [(cx + (fw + hv) * np.cos(t), (top + cy + 0.3 * fh) / 2 - ((cy + 0.3 * fh - top) / 2) * np.sin(t))
               for t in np.linspace(0.0, np.pi, 9)]
        d.polygon(line + arc, fill=_c(hair))

    # --- eyes and brows ---
    ex, a["eye_spacing"] = _u(rng, 16.0, 21.0)
    ex *= s
    ew, eh = rng.uniform(7.5, 10.0) * s, rng.uniform(3.6, 5.0) * s
    eci = rng.choice(len(EYE_COLORS), p=_EYE_P)
    a["eye_color"] = eci
    iris = _EYE_RGB[eci] * rng.uniform(0.85, 1.15)
    gaze = rng.uniform(-1.5, 1.5)
    bt, a["eyebrow_thickness"] = _u(rng, 1.5, 4.5)
    brow = hair * 0.75 if hc != 0 else hair
    by, arch = ey - rng.uniform(9, 13) * s, rng.uniform(1, 4) * s
    for side in (-1, 1):
        x0 = cx + side * ex
        d.ellipse((x0 - ew, ey - eh, x0 + ew, ey + eh), fill=_c((245, 245, 240), 255))
        ir = eh * 0.95
        d.ellipse((x0 + gaze - ir, ey - ir, x0 + gaze + ir, ey + ir), fill=_c(iris, 255))
        pr = ir * 0.45
        d.ellipse((x0 + gaze - pr, ey - pr, x0 + gaze + pr, ey + pr), fill=_c((15, 12, 12), 255))
        d.point((x0 + gaze - 1, ey - 1), fill=_c((255, 255, 255), 255))
        d.arc((x0 - ew, ey - eh, x0 + ew, ey + eh), 195, 345, fill=_c(skin * 0.35, 255), width=2)
        d.line([(x0 - side * ew * 1.1, by + 2), (x0 + side * 0.1, by - arch), (x0 + side * ew * 1.25, by + 1.5)],
               fill=_c(brow, 255), width=int(round(bt * s)), joint="curve")

    # --- nose: bridge shading line, soft tip, nostrils ---
    ny = ey + rng.uniform(20, 26) * s
    nside = rng.choice((-1, 1))
    d.line([(cx + nside * 4 * s, ey + 4), (cx + nside * 5 * s, ny - 2)], fill=_c(skin * 0.85, 255), width=2)
    d.ellipse((cx - 6 * s, ny - 5 * s, cx + 6 * s, ny + 2 * s), fill=_c(skin * 0.93, 255))
    for side in (-1, 1):
        d.ellipse((cx + side * 4 * s - 2, ny - 1, cx + side * 4 * s + 2, ny + 1.5), fill=_c(skin * 0.55, 255))

    # --- mouth: curvature from frown (-1) to big smile (+1) ---
    smile = rng.uniform(-0.6, 1.0)
    a["smile"] = smile
    my, mw = ny + rng.uniform(14, 19) * s, rng.uniform(11, 16) * s * (1 + 0.15 * max(smile, 0))
    opening = max(0.0, rng.uniform(-4, 6) + 3 * smile) * s
    a["mouth_open"] = min(opening / 9.0, 1.0)
    lip = skin * 0.75 + np.array([180, 60, 70]) * 0.25 * rng.uniform(0.6, 1.3)
    bow = 1 - _T ** 2
    yc = my - smile * 5 * s * _T ** 2 + smile * 1.5 * s
    xs_m = cx + mw * _T
    up = yc - rng.uniform(2, 3.5) * s * np.sqrt(bow)
    lo = yc + opening * bow + rng.uniform(2.5, 4.5) * s * np.sqrt(bow)
    d.polygon(list(zip(xs_m, up)) + list(zip(xs_m[::-1], lo[::-1])), fill=_c(lip, 255))
    if opening > 1.5:
        inner = list(zip(xs_m, yc)) + list(zip(xs_m[::-1], (yc + opening * bow)[::-1]))
        d.polygon(inner, fill=_c((70, 25, 30), 255))
        teeth = list(zip(xs_m[2:-2], yc[2:-2])) + list(zip(xs_m[-3:1:-1], (yc + opening * bow * 0.5)[-3:1:-1]))
        d.polygon(teeth, fill=_c((240, 236, 225), 255))
    else:
        d.line(list(zip(xs_m, yc)), fill=_c(lip * 0.55, 255), width=1)

    # --- glasses (~15%), a third of them sunglasses ---
    glasses = rng.random() < 0.15
    sun = glasses and rng.random() < 0.33
    a["glasses"], a["sunglasses"] = glasses, sun
    if glasses:
        frame = _c(rng.choice([(20, 20, 20), (90, 60, 30), (150, 150, 160)]))
        gw, gh = ew + rng.uniform(3, 6) * s, eh + rng.uniform(4, 7) * s
        for side in (-1, 1):
            x0 = cx + side * ex
            box = (x0 - gw, ey - gh, x0 + gw, ey + gh)
            d.rounded_rectangle(box, radius=gh * 0.7, outline=frame, width=2,
                                fill=_c((25, 25, 30)) if sun else None)
            d.line([(x0 + side * gw, ey - gh * 0.4), (cx + side * fw * 0.99, ey - gh * 0.2)], fill=frame, width=2)
        d.line([(cx - ex + gw, ey - 1), (cx + ex - gw, ey - 1)], fill=frame, width=2)

    # --- blur (antialiasing), face shading from the soft skin mask, noise ---
    # BoxBlur, not GaussianBlur: ~4x cheaper on RGBA and visually the same here.
    img = img.filter(ImageFilter.BoxBlur(rng.uniform(0.5, 1.1)))
    bands = img.split()  # planar (H, W) bands: numpy on them is ~3x faster than on HxWx4
    lx, ly = cx + rng.uniform(-0.6, 0.6) * fw, cy - 0.35 * fh
    r2 = ((_XX - lx) * (1.0 / (1.4 * fw))) ** 2 + ((_YY - ly) * (1.0 / (1.4 * fh))) ** 2
    shade = np.maximum(0.12 - 0.4 * r2, -0.35)  # highlight near the light, darker rim
    shade *= np.asarray(bands[3]).astype(np.float32)
    shade *= 1.0 / 255.0
    shade += 1.0
    shade *= rng.uniform(0.92, 1.08)  # global exposure
    # Binomial(16, 1/2) noise from popcounts of random 16-bit words: Gaussian-like
    # (std 2 before scaling), pure integer arithmetic, so identical on every
    # (little-endian) platform, and ~10x cheaper than standard_normal.
    bits = rng.integers(-2 ** 63, 2 ** 63 - 1, size=HEIGHT * WIDTH * 3 // 4, dtype=np.int64, endpoint=True)
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
    out = np.array(Image.merge("RGB", chans))
    attrs = np.array([float(a[n]) for n in ATTRIBUTE_NAMES], np.float32)
    return out, attrs


def render_faces(seed, indices):
    """Renders a batch of synthetic faces.

    Args:
        seed: Non-negative int, base seed of the dataset.
        indices: Iterable of non-negative ints.

    Returns:
        (images, attributes): uint8 (N, 218, 178, 3) and float32
        (N, len(ATTRIBUTE_NAMES)); row i equals render_face(seed, indices[i]).
    """
    idx = [int(i) for i in np.asarray(indices).reshape(-1)]
    images = np.empty((len(idx), HEIGHT, WIDTH, 3), np.uint8)
    attrs = np.empty((len(idx), len(ATTRIBUTE_NAMES)), np.float32)
    for j, i in enumerate(idx):
        images[j], attrs[j] = render_face(seed, i)
    return images, attrs
