"""Drawing for the synthetic dataset (``data.synthetic``): procedural 48×48 faces whose expression is set by
facial geometry, the occluders planted on some of them, and non-face images.

Faces are drawn with OpenCV at twice the output size in a canonical (unposed) frame, then posed (small
rotation, scale, shift), downsampled and degraded (lighting gradient, blur, noise). ``class_region_masks`` says
which facial regions carry each class's signal.
"""

from __future__ import annotations

import cv2
import numpy as np

from fer_workbench import CLASS_NAMES, IMAGE_SIZE

NONFACE_KINDS = ("blank", "noise", "text", "icon")
OCCLUDER_KINDS = ("hand", "sunglasses", "mask")

S = 2  # drawing supersampling factor
CANVAS = IMAGE_SIZE * S
SHIFT = 4  # cv2 fixed-point bits for sub-pixel drawing
ONE = 1 << SHIFT
# Faces are laid out in 48 px drawing coordinates, then zoomed about ZOOM_CENTRE into the canonical frame so
# that the face fills it the way FER2013's tight crops do.
ZOOM = 1.15
ZOOM_CENTRE = (24.0, 26.0)

# Expression parameters, in output (48 px) units. A face's parameters are
# neutral + intensity · (prototype − neutral) + jitter, so weak expressions drift toward neutral.
PARAMS = ("eye_open", "brow_raise", "brow_tilt", "mouth_width", "mouth_curve", "mouth_open", "lip_raise",
          "nose_wrinkle")
PROTOTYPES = np.array([
    # eye   brow  tilt  width curve open  lip   wrinkle
    [0.55, -1.6, -2.4, 5.4, -0.8, 0.0, 0.0, 0.1],  # angry: brows down toward the centre, narrow eyes, tight mouth
    [0.95, -1.1, -1.2, 6.6, -1.1, 0.5, 1.6, 1.0],  # disgust: nose wrinkle, raised one-sided upper lip, low brows
    [1.45, 1.9, 1.6, 8.6, -0.7, 1.3, 0.0, 0.0],  # fear: raised, angled-up brows, wide eyes, stretched mouth
    [1.00, 0.0, 0.0, 8.6, 2.9, 0.7, 0.0, 0.0],  # happy: upturned mouth
    [1.00, 0.5, 1.9, 6.6, -2.2, 0.0, 0.0, 0.0],  # sad: downturned mouth, inner brows raised
    [1.50, 2.7, 0.2, 4.6, 0.0, 4.0, 0.0, 0.0],  # surprise: raised brows, wide eyes, open round mouth
    [1.00, 0.0, 0.0, 7.0, 0.0, 0.0, 0.0, 0.0],  # neutral: flat everything
])
NEUTRAL = PROTOTYPES[CLASS_NAMES.index("neutral")]
JITTER = np.array([0.14, 0.6, 0.6, 0.7, 0.55, 0.35, 0.35, 0.12])
PARAM_LIMITS = np.array([[0.35, 1.9], [-3.5, 4.0], [-4.0, 3.5], [3.5, 10.0], [-3.5, 4.0], [0.0, 5.5],
                         [0.0, 3.0], [0.0, 1.3]])

# Feature regions (row slice, column slice in drawing coordinates), covering each feature under jitter.
REGIONS = {
    "brows": (slice(8, 19), slice(9, 40)),
    "eyes": (slice(16, 25), slice(10, 39)),
    "nose": (slice(19, 32), slice(18, 31)),
    "mouth": (slice(28, 44), slice(13, 36)),
}
CLASS_REGIONS = {
    "angry": ("brows", "eyes", "mouth"),
    "disgust": ("brows", "nose", "mouth"),
    "fear": ("brows", "eyes", "mouth"),
    "happy": ("mouth",),
    "sad": ("brows", "mouth"),
    "surprise": ("brows", "eyes", "mouth"),
    "neutral": ("brows", "eyes", "nose", "mouth"),  # neutral's evidence is every feature being at rest
}

CHUNK = 2048  # rows post-processed at once, to bound memory


def class_region_masks() -> np.ndarray:
    """Bool 7×48×48: for each class, the canonical-frame facial regions whose geometry defines it."""
    drawn = np.zeros((len(CLASS_NAMES), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for k, name in enumerate(CLASS_NAMES):
        for region in CLASS_REGIONS[name]:
            drawn[(k, *REGIONS[region])] = 1
    zoom = cv2.getRotationMatrix2D(ZOOM_CENTRE, 0.0, ZOOM)
    return np.stack([cv2.warpAffine(d, zoom, (IMAGE_SIZE, IMAGE_SIZE), flags=cv2.INTER_NEAREST) > 0
                     for d in drawn])



# --------------------------------------------------------------------------------------------- drawing


def _pt(x: float, y: float) -> tuple[int, int]:
    """A drawing coordinate as a fixed-point canvas point (zoomed into the canonical frame)."""
    return (round((ZOOM_CENTRE[0] + (x - ZOOM_CENTRE[0]) * ZOOM) * S * ONE),
            round((ZOOM_CENTRE[1] + (y - ZOOM_CENTRE[1]) * ZOOM) * S * ONE))


def _ax(a: float, b: float) -> tuple[int, int]:
    return max(round(a * ZOOM * S * ONE), 1), max(round(b * ZOOM * S * ONE), 1)


def _ellipse(img, cx, cy, ax, ay, angle, color, thickness=-1):
    cv2.ellipse(img, _pt(cx, cy), _ax(ax, ay), angle, 0, 360, color, thickness, cv2.LINE_AA, SHIFT)


def _poly(img, xs, ys, color, thickness=-1, closed=False):
    pts = np.empty((1, len(xs), 2))
    pts[0, :, 0] = xs
    pts[0, :, 1] = ys
    pts = np.rint((pts - ZOOM_CENTRE) * (ZOOM * S * ONE) + np.multiply(ZOOM_CENTRE, S * ONE)).astype(np.int32)
    if thickness < 0:
        cv2.fillPoly(img, pts, color, cv2.LINE_AA, SHIFT)
    else:
        cv2.polylines(img, pts, closed, color, thickness, cv2.LINE_AA, SHIFT)


_T = np.linspace(-1.0, 1.0, 15)


def _draw_face(p: dict, img: np.ndarray) -> None:
    """Draw a face (background already filled) in the canonical frame of a CANVAS×CANVAS uint8 image."""
    skin, dark = p["skin"], p["feature_tone"]
    cx = 24.0
    # hair, neck, shoulders, ears, face
    if p["hair"] >= 0:
        _ellipse(img, cx, 20.5 - p["hair_drop"], p["face_w"] + 2.2, p["face_h"] - 1.5, 0, p["hair"])
    _poly(img, np.array([cx - 7, cx + 7, cx + 8, cx - 8]), np.array([36, 36, 49, 49]), skin * 0.85)
    _ellipse(img, cx, 53, 22, 8, 0, p["clothes"])
    for side in (-1, 1):
        _ellipse(img, cx + side * p["face_w"], 23, 2.2, 4.0, 0, skin * 0.9)
    _ellipse(img, cx, 25, p["face_w"], p["face_h"], 0, skin * 0.93)
    _ellipse(img, cx - 0.6, 23.5, p["face_w"] - 2.2, p["face_h"] - 2.8, 0, skin)
    if p["hair"] >= 0 and p["fringe"]:
        _ellipse(img, cx, 25 - p["face_h"] + 1.0, p["face_w"] - 1.0, 3.2, 0, p["hair"])

    eye_open, raise_, tilt, width, curve, open_, lip, wrinkle = p["expr"]
    # eyes: sclera, iris, upper lid; wider eyes show more white, narrowed ones become slits
    half_h = 1.55 * eye_open
    for side in (-1, 1):
        ex, ey = cx + side * 6.8, 21.0
        _ellipse(img, ex, ey, 3.1, half_h, 0, min(skin * 1.25 + 25, 250))
        _ellipse(img, ex + p["gaze"], ey, 1.45, min(1.45, half_h), 0, dark)
        _ellipse(img, ex, ey, 3.2, half_h + 0.2, 0, dark * 0.9, S)
    # brows: inner end at x = 24 ± 3, raised by raise_, inner end higher than the outer by tilt
    for side in (-1, 1):
        xs = cx + side * np.array([3.0, 6.0, 9.6])
        base = 15.8 - raise_ - 0.5 * (eye_open - 1.0)
        ys = base + np.array([-0.5 * tilt, -0.6, 0.5 * tilt])  # slight arch
        _poly(img, xs, ys, dark * 0.85, thickness=int(p["brow_thick"] * S))
    # nose: sides, nostrils; wrinkles across the bridge and folds toward the mouth for disgust
    _poly(img, np.array([cx - 1.2, cx - 2.2]), np.array([23.5, 29.5]), skin * 0.8, thickness=S)
    for side in (-1, 1):
        _ellipse(img, cx + side * 1.6, 30.2, 1.0, 0.55, 0, dark)
    if wrinkle > 0.05:
        tone = skin * (1.0 - 0.35 * min(wrinkle, 1.2))
        for dy in (22.5, 25.0):
            _poly(img, np.array([cx - 2.6, cx, cx + 2.6]), np.array([dy, dy - 0.5, dy]), tone, thickness=S)
        for side in (-1, 1):
            _poly(img, cx + side * np.array([3.0, 5.2, 6.2]), np.array([29.0, 31.5, 34.5]), tone, thickness=S)
    # mouth: lip line y(t) with corners lifted by curve, opened by open_, upper lip raised on one side by lip
    mx, my = cx + p["mouth_dx"], 35.5
    xs = mx + width * _T
    line = my - curve * _T ** 2 + 0.3 * curve
    bulge = (1.0 - _T ** 2) ** 0.7
    sneer = lip * np.exp(-((_T - 0.45 * p["sneer_side"]) / 0.35) ** 2)
    upper = line - 0.45 * open_ * bulge - sneer
    lower = line + 0.55 * open_ * bulge
    if (lower - upper).max() > 0.5:
        _poly(img, np.concatenate([xs, xs[::-1]]), np.concatenate([upper, lower[::-1]]), dark * 0.55)
        if p["teeth"] and open_ > 0.8:
            teeth = np.minimum(upper + 0.45 * (lower - upper), upper + 1.3)
            _poly(img, np.concatenate([xs, xs[::-1]]), np.concatenate([upper, teeth[::-1]]),
                  min(skin * 1.3 + 30, 245))
    lip_tone = p["lip_tone"]
    _poly(img, xs, upper, lip_tone, thickness=S)
    _poly(img, xs, lower + 0.5, lip_tone, thickness=int(1.5 * S))


def _draw_occluder(kind: str, p: dict, img: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> None:
    cx = 24.0
    if kind == "sunglasses":
        tone = float(rng.uniform(5, 45))
        for target in (img, mask):
            color = tone if target is img else 255
            for side in (-1, 1):
                _ellipse(target, cx + side * 6.8, 21.0 + rng.uniform(-0.3, 0.3), 4.7, 3.4, 0, color)
            _poly(target, np.array([cx - 3, cx + 3]), np.array([20.0, 20.0]), color, thickness=S)
    elif kind == "mask":
        tone = float(rng.uniform(150, 245))
        top = 26.0 + rng.uniform(-1.5, 1.0)
        xs = cx + np.array([-p["face_w"] + 1, -5, 5, p["face_w"] - 1, p["face_w"] - 3, 0, -p["face_w"] + 3])
        ys = np.array([top + 2, top, top, top + 2, 40.0, 45.0, 40.0])
        _poly(img, xs, ys, tone)
        _poly(mask, xs, ys, 255)
        for side in (-1, 1):
            _poly(img, np.array([cx + side * (p["face_w"] - 1), cx + side * p["face_w"]]),
                  np.array([top + 2, 21.0]), tone * 0.8, thickness=S)
    else:  # hand: a palm and fingers in a skin tone, somewhere over the lower or middle face
        # a hand is lit differently from the face, so it stands a little lighter or darker than the skin
        tone = float(np.clip(p["skin"] * rng.uniform(1.1, 1.3) ** rng.choice([-1, 1]), 30, 250))
        hx, hy = cx + rng.uniform(-8, 8), rng.uniform(28, 38)
        angle = rng.uniform(-40, 40)
        for target, color, grow in ((img, tone * 0.7, 0.5), (img, tone, 0.0), (mask, 255, 0.5)):
            _ellipse(target, hx, hy, 6.5 + grow, 5.0 + grow, angle, color)
            for f in range(4):
                fa = np.deg2rad(angle - 90 + (f - 1.5) * 16)
                _ellipse(target, hx + 7.5 * np.cos(fa), hy + 7.5 * np.sin(fa), 1.5 + grow, 4.2 + grow,
                         np.rad2deg(fa) + 90, color)


def _fill_background(img: np.ndarray, p: dict, rng: np.random.Generator) -> None:
    kind = p["background"]
    if kind == 0:
        img[:] = p["bg_level"]
    elif kind == 1:
        ramp = np.linspace(-1, 1, CANVAS, dtype=np.float32)
        theta = rng.uniform(0, 2 * np.pi)
        grad = np.cos(theta) * ramp[None, :] + np.sin(theta) * ramp[:, None]
        img[:] = np.clip(p["bg_level"] + rng.uniform(20, 70) * grad, 0, 255)
    else:  # low-frequency texture, like a room behind the subject
        coarse = rng.uniform(-1, 1, (6, 6)).astype(np.float32)
        tex = cv2.resize(coarse, (CANVAS, CANVAS), interpolation=cv2.INTER_CUBIC)
        img[:] = np.clip(p["bg_level"] + rng.uniform(15, 50) * tex, 0, 255)


def draw_nonface(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A 48×48 uint8 image that is not a face."""
    if kind == "blank":
        return np.full((IMAGE_SIZE, IMAGE_SIZE), rng.integers(0, 256), np.uint8)
    if kind == "noise":
        noise = rng.standard_normal((IMAGE_SIZE, IMAGE_SIZE))
        if rng.random() < 0.5:
            noise = cv2.GaussianBlur(noise, (0, 0), rng.uniform(0.5, 1.2))
        noise = rng.uniform(70, 180) + rng.uniform(30, 70) * noise / noise.std()
        return np.clip(noise, 0, 255).astype(np.uint8)
    bg = float(rng.uniform(0, 255))
    img = np.full((CANVAS, CANVAS), bg, np.uint8)
    fg = (bg + rng.uniform(90, 160)) % 256
    if kind == "text":
        letters = "ABCDEFGHKLMNPRSTUVWXYZ0123456789"
        for line in range(int(rng.integers(1, 4))):
            word = "".join(rng.choice(list(letters), int(rng.integers(2, 6))))
            y = 24 + line * 30 + int(rng.integers(-6, 6))
            cv2.putText(img, word, (int(rng.integers(0, 20)), y), int(rng.choice([0, 2, 3, 4])),
                        rng.uniform(0.6, 1.1), fg, int(rng.integers(1, 4)), cv2.LINE_AA)
    else:  # icon / clip art: a few flat shapes
        for _ in range(int(rng.integers(1, 4))):
            color = float(rng.uniform(0, 255))
            shape = int(rng.integers(3))
            x, y, r = rng.uniform(10, 38), rng.uniform(10, 38), rng.uniform(5, 16)
            if shape == 0:
                _ellipse(img, x, y, r, r * rng.uniform(0.6, 1.0), 0, color)
            elif shape == 1:
                _poly(img, np.array([x - r, x + r, x + r, x - r]), np.array([y - r, y - r, y + r, y + r]) * 0.8,
                      color)
            else:
                a = rng.uniform(0, 2 * np.pi) + np.arange(3) * 2 * np.pi / 3
                _poly(img, x + r * np.cos(a), y + r * np.sin(a), color)
    return cv2.resize(img, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)


def _face_params(n: int, labels: np.ndarray, rng: np.random.Generator) -> list[dict]:
    """Per-image drawing parameters, drawn vectorised."""
    intensity = rng.uniform(0.45, 1.15, n)
    expr = NEUTRAL + intensity[:, None] * (PROTOTYPES[labels] - NEUTRAL) + rng.normal(0, 1, (n, len(PARAMS))) * JITTER
    expr = np.clip(expr, PARAM_LIMITS[:, 0], PARAM_LIMITS[:, 1])
    skin = rng.uniform(85, 215, n)
    hair = np.where(rng.random(n) < 0.85, rng.uniform(10, 150, n), -1.0)
    columns = {
        "expr": expr,
        "intensity": intensity,
        "skin": skin,
        "feature_tone": skin * rng.uniform(0.2, 0.5, n),
        "lip_tone": skin * rng.uniform(0.45, 0.7, n),
        "hair": hair,
        "hair_drop": rng.uniform(0, 2.5, n),
        "fringe": rng.random(n) < 0.3,
        "clothes": rng.uniform(0, 255, n),
        "face_w": rng.uniform(13.0, 16.0, n),
        "face_h": rng.uniform(17.0, 20.0, n),
        "brow_thick": rng.uniform(0.9, 1.8, n),
        "gaze": rng.uniform(-0.6, 0.6, n),
        "mouth_dx": rng.normal(0, 0.3, n),
        "sneer_side": rng.choice([-1.0, 1.0], n),
        "teeth": rng.random(n) < np.where(labels == CLASS_NAMES.index("happy"), 0.7, 0.3),
        "background": rng.integers(0, 3, n),
        "bg_level": rng.uniform(20, 235, n),
        "angle": rng.uniform(-10, 10, n),
        "scale": rng.uniform(0.9, 1.1, n),
        "dx": rng.uniform(-2.5, 2.5, n),
        "dy": rng.uniform(-2.5, 2.5, n),
        "light": rng.uniform(0, 0.35, n) * (rng.random(n) < 0.8),
        "light_dir": rng.uniform(0, 2 * np.pi, n),
        "blur": np.where(rng.random(n) < 0.6, rng.uniform(0.3, 1.0, n), 0.0),
        "noise": rng.uniform(0, 8, n),
        "contrast": rng.uniform(0.75, 1.2, n),
    }
    return [{key: value[i] for key, value in columns.items()} for i in range(n)]


_RAMP = np.linspace(-1, 1, IMAGE_SIZE, dtype=np.float32)


def render_faces(labels: np.ndarray, occluders: np.ndarray, class_masks: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """uint8 faces (n×48×48) and their posed, un-occluded signal regions (n×48×48 bool)."""
    n = len(labels)
    params = _face_params(n, labels, rng)
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    regions = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), bool)
    canvas = np.empty((CANVAS, CANVAS), np.uint8)
    occ_canvas = np.empty((CANVAS, CANVAS), np.uint8)
    masks_u8 = class_masks.astype(np.uint8)
    for start in range(0, n, CHUNK):
        chunk = params[start:start + CHUNK]
        small = np.empty((len(chunk), IMAGE_SIZE, IMAGE_SIZE), np.float32)
        for j, p in enumerate(chunk):
            i = start + j
            _fill_background(canvas, p, rng)
            _draw_face(p, canvas)
            if occluders[i]:
                occ_canvas[:] = 0
                _draw_occluder(occluders[i], p, canvas, occ_canvas, rng)
            m48 = cv2.getRotationMatrix2D((IMAGE_SIZE / 2, IMAGE_SIZE / 2), p["angle"], p["scale"])
            m48[:, 2] += (p["dx"], p["dy"])
            m96 = m48.copy()
            m96[:, 2] *= S
            posed = cv2.warpAffine(canvas, m96, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
            small[j] = cv2.resize(posed, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
            if p["blur"] > 0:
                small[j] = cv2.GaussianBlur(small[j], (0, 0), p["blur"])
            region = cv2.warpAffine(masks_u8[labels[i]], m48, (IMAGE_SIZE, IMAGE_SIZE), flags=cv2.INTER_NEAREST) > 0
            if occluders[i]:
                posed_occ = cv2.warpAffine(occ_canvas, m96, (CANVAS, CANVAS), flags=cv2.INTER_LINEAR)
                region &= cv2.resize(posed_occ, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA) < 128
            regions[i] = region
        # contrast, lighting gradient and sensor noise, vectorised over the chunk
        gain, direction, contrast, noise = (np.array([p[key] for p in chunk], np.float32)[:, None, None]
                                            for key in ("light", "light_dir", "contrast", "noise"))
        light = 1.0 + gain * (np.cos(direction) * _RAMP[None, None, :] + np.sin(direction) * _RAMP[None, :, None])
        small = ((small - 128.0) * contrast + 128.0) * light
        small += noise * rng.standard_normal(small.shape, dtype=np.float32)
        images[start:start + len(chunk)] = np.clip(np.rint(small), 0, 255)
    return images, regions
