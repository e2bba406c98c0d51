"""Procedurally drawn occluders (hands, sunglasses, face masks, overlaid text, held objects) pasted onto 48×48
faces: the "occluded" half of the self-supervised occlusion detector's training pairs (``cleaning.occlusion``).

They are drawn independently of the planted ones in ``fer_workbench.data.synthetic`` (different shapes, tones,
placement and compositing), so that the synthetic evaluation of the detector is not circular.
"""

from __future__ import annotations

import string

import cv2
import numpy as np

from fer_workbench.errors import WorkbenchError

OCCLUDER_KINDS = ("hand", "sunglasses", "mask", "text", "object")
KIND_WEIGHTS = np.array([0.3, 0.2, 0.2, 0.15, 0.15])

SIZE = 48
SS = 2  # supersampling factor of the occluder canvas
SHIFT = 3  # cv2 fixed-point bits
_TEXT_CHARS = string.ascii_letters + string.digits + "@#&!?.:-"
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX,
          cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX)


# --------------------------------------------------------------------------------------------- drawing


def _p(x, y) -> tuple[int, int]:
    """A 48 px coordinate as a fixed-point point on the supersampled canvas."""
    return round(x * SS * (1 << SHIFT)), round(y * SS * (1 << SHIFT))


def _pts(xy: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(xy, np.float64) * SS * (1 << SHIFT)).astype(np.int32).reshape(1, -1, 2)


def _fill(canvas, alpha, xy, tone, opacity=1.0):
    cv2.fillPoly(canvas, _pts(xy), float(tone), cv2.LINE_AA, SHIFT)
    cv2.fillPoly(alpha, _pts(xy), float(opacity), cv2.LINE_AA, SHIFT)


def _line(canvas, alpha, a, b, tone, width, opacity=1.0):
    w = max(round(width * SS), 1)
    cv2.line(canvas, _p(*a), _p(*b), float(tone), w, cv2.LINE_AA, SHIFT)
    cv2.line(alpha, _p(*a), _p(*b), float(opacity), w, cv2.LINE_AA, SHIFT)


def _rotate(xy: np.ndarray, angle_deg: float, centre) -> np.ndarray:
    t = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return (np.asarray(xy) - centre) @ rot.T + centre


def _superellipse(cx, cy, rx, ry, power, n=28, angle=0.0) -> np.ndarray:
    """Points of a superellipse (power 2: ellipse, larger: rounded rectangle)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    x = rx * np.sign(c) * np.abs(c) ** (2 / power)
    y = ry * np.sign(s) * np.abs(s) ** (2 / power)
    return _rotate(np.stack([cx + x, cy + y], 1), angle, (cx, cy))


def _face_geometry(rng: np.random.Generator) -> dict:
    """Where the face parts probably are: FER2013 crops are roughly aligned, with some scale and shift."""
    scale = rng.uniform(0.8, 1.2)
    cx = 24 + rng.uniform(-3, 3)
    eye_y = 20 + rng.uniform(-3.5, 3.0)
    return {"cx": cx, "eye_y": eye_y, "scale": scale, "eye_dx": 7.5 * scale,
            "nose_y": eye_y + 8 * scale, "mouth_y": eye_y + 15 * scale, "face_hw": 15 * scale,
            "angle": rng.uniform(-12, 12)}


SKIN_REFERENCE = 128.0  # hands are drawn in units of the image's skin tone: this value means "skin"


def _skin_tones(images: np.ndarray) -> np.ndarray:
    """Median grey level of the central face area, per image."""
    centre = images[:, 16:36, 14:34].reshape(len(images), -1)
    return np.median(centre, axis=1).astype(np.float32)


def _draw_hand(canvas, alpha, g, rng):
    # lit differently from the face: a little lighter or darker than the skin, rarely the same
    tone = SKIN_REFERENCE * rng.uniform(0.7, 1.35)
    # palm: a rotated rounded rectangle, placed over the mouth, cheek, chin or eyes
    target = rng.choice(["mouth", "cheek", "chin", "eyes", "forehead"], p=[0.3, 0.3, 0.2, 0.12, 0.08])
    side = rng.choice([-1, 1])
    hx = g["cx"] + side * {"mouth": rng.uniform(0, 5), "cheek": rng.uniform(6, 13), "chin": rng.uniform(0, 6),
                           "eyes": rng.uniform(0, 9), "forehead": rng.uniform(0, 8)}[target]
    hy = {"mouth": g["mouth_y"], "cheek": g["nose_y"] + 2, "chin": g["mouth_y"] + 7, "eyes": g["eye_y"],
          "forehead": g["eye_y"] - 9}[target] + rng.uniform(-3, 3)
    s = g["scale"] * rng.uniform(0.8, 1.35)
    pw, ph = rng.uniform(5.5, 8.5) * s, rng.uniform(4.5, 7.0) * s
    # fingers point away from where the arm comes in (from below or from the side)
    direction = rng.uniform(-150, -30) if target != "chin" else rng.uniform(-160, -20)
    if target == "cheek" and rng.random() < 0.5:
        direction = 180 + rng.uniform(-35, 35) if side > 0 else rng.uniform(-35, 35)
    d = np.deg2rad(direction)
    ux, uy = np.cos(d), np.sin(d)  # along the fingers
    vx, vy = -uy, ux  # across the hand
    palm = _superellipse(hx, hy, pw, ph, rng.uniform(2.5, 4.0), angle=direction)
    # wrist/forearm going back out of the frame
    back = np.array([hx - ux * 60, hy - uy * 60])
    wrist_w = pw * rng.uniform(0.55, 0.8)
    arm = np.array([[hx + vx * wrist_w, hy + vy * wrist_w],
                    [back[0] + vx * wrist_w * 1.3, back[1] + vy * wrist_w * 1.3],
                    [back[0] - vx * wrist_w * 1.3, back[1] - vy * wrist_w * 1.3],
                    [hx - vx * wrist_w, hy - vy * wrist_w]])
    shade = tone * rng.uniform(0.8, 0.95)
    _fill(canvas, alpha, arm, shade)
    _fill(canvas, alpha, palm, tone)
    n_fingers = int(rng.integers(3, 6))
    width = pw * 2 / (n_fingers + 0.6)
    curl = rng.uniform(0.4, 1.0)
    gap_tone = tone * rng.uniform(0.55, 0.8)
    for f in range(n_fingers):
        off = (f - (n_fingers - 1) / 2) * width * 1.02
        length = rng.uniform(6, 11) * s * curl * (0.8 if f in (0, n_fingers - 1) else 1.0)
        spread = np.deg2rad(rng.uniform(-8, 8))
        fx, fy = np.cos(d + spread), np.sin(d + spread)
        base = (hx + vx * off + ux * ph * 0.5, hy + vy * off + uy * ph * 0.5)
        tip = (base[0] + fx * length, base[1] + fy * length)
        _line(canvas, alpha, base, tip, tone * rng.uniform(0.93, 1.07), width * 0.95)
        if f:  # a darker crease between neighbouring fingers
            gx, gy = base[0] - vx * width * 0.51, base[1] - vy * width * 0.51
            _line(canvas, alpha, (gx, gy), (gx + fx * length * 0.8, gy + fy * length * 0.8), gap_tone, 0.6)
    if rng.random() < 0.6:  # thumb
        tb = (hx - vx * pw * side * 0.9, hy - vy * pw * side * 0.9)
        td = d - side * np.deg2rad(rng.uniform(40, 80))
        _line(canvas, alpha, tb, (tb[0] + np.cos(td) * 7 * s, tb[1] + np.sin(td) * 7 * s), tone * 0.95,
              width * 1.1)


def _draw_sunglasses(canvas, alpha, g, rng):
    tone = rng.uniform(0, 60) if rng.random() < 0.85 else rng.uniform(60, 130)
    frame = max(tone * rng.uniform(0.3, 1.0), 0)
    s = g["scale"] * rng.uniform(0.9, 1.25)
    dx = g["eye_dx"] * rng.uniform(0.9, 1.1)
    ey = g["eye_y"] + rng.uniform(-1.5, 1.5)
    centre = (g["cx"], ey)
    shape = rng.choice(["round", "rect", "aviator", "visor"])
    lw, lh = rng.uniform(4.2, 6.0) * s, rng.uniform(3.0, 5.0) * s
    lenses = []
    if shape == "visor":
        band = _superellipse(g["cx"], ey, dx + lw, lh, rng.uniform(4, 8), n=36)
        lenses.append(band)
    else:
        for sd in (-1, 1):
            if shape == "aviator":  # wide at the top, drooping towards the outer side
                t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
                x = lw * np.cos(t)
                y = lh * np.sin(t) * np.where(np.sin(t) > 0, 1.25, 0.8)
                y = y + 0.25 * lh * np.where(np.sin(t) > 0, sd * x / lw, 0)
                pts = np.stack([g["cx"] + sd * dx + x, ey + y], 1)
            else:
                pts = _superellipse(g["cx"] + sd * dx, ey, lw, lh, 2.0 if shape == "round" else rng.uniform(3, 6))
            lenses.append(pts)
    rimmed = rng.random() < 0.7
    for pts in lenses:
        pts = _rotate(pts, g["angle"], centre)
        if rimmed:
            cv2.polylines(canvas, _pts(pts), True, float(frame), max(int(rng.uniform(0.6, 1.6) * SS), 1),
                          cv2.LINE_AA, SHIFT)
            cv2.polylines(alpha, _pts(pts), True, 1.0, max(int(1.2 * SS), 1), cv2.LINE_AA, SHIFT)
        _fill(canvas, alpha, pts, tone)
        if rng.random() < 0.4:  # a reflection
            c = pts.mean(0)
            hl = _superellipse(c[0] - lw * 0.3, c[1] - lh * 0.3, lw * 0.35, lh * 0.18, 2, angle=-30)
            _fill(canvas, alpha, hl, min(tone + rng.uniform(40, 110), 255))
    if shape != "visor":
        bridge = _rotate(np.array([[g["cx"] - dx + lw * 0.9, ey - lh * 0.3], [g["cx"] + dx - lw * 0.9, ey - lh * 0.3]]),
                         g["angle"], centre)
        _line(canvas, alpha, bridge[0], bridge[1], frame, rng.uniform(0.8, 1.5))
    for sd in (-1, 1) if rng.random() < 0.7 else ():  # temples towards the ears (hidden when face-on)
        a = _rotate(np.array([[g["cx"] + sd * (dx + lw), ey - lh * 0.4], [g["cx"] + sd * (dx + lw + 6), ey - 0.5]]),
                    g["angle"], centre)
        _line(canvas, alpha, a[0], a[1], frame, rng.uniform(0.7, 1.4))


def _draw_mask(canvas, alpha, g, rng):
    r = rng.random()
    tone = rng.uniform(170, 250) if r < 0.55 else (rng.uniform(90, 170) if r < 0.8 else rng.uniform(10, 70))
    top = g["nose_y"] + rng.uniform(-4, 1)
    bottom = g["mouth_y"] + rng.uniform(7, 14) * g["scale"]
    half = g["face_hw"] * rng.uniform(0.8, 1.05)
    centre = (g["cx"], (top + bottom) / 2)
    # an outline: flat-ish top with a peak over the nose, sides, a rounded bottom under the chin
    t = np.linspace(0, 1, 9)
    upper_x = g["cx"] - half + 2 * half * t
    upper_y = top + 2.5 - 2.5 * np.sin(np.pi * t) ** 0.7 + rng.uniform(-0.4, 0.4, len(t))
    lower_x = upper_x[::-1]
    lower_y = (top + (bottom - top) * (0.45 + 0.55 * np.sin(np.pi * t) ** 0.6))[::-1]
    pts = _rotate(np.concatenate([np.stack([upper_x, upper_y], 1), np.stack([lower_x, lower_y], 1)]),
                  g["angle"], centre)
    _fill(canvas, alpha, pts, tone)
    pleat_tone = tone * rng.uniform(0.7, 0.92)
    for k in range(int(rng.integers(0, 4))):  # pleats
        y = top + (bottom - top) * (0.3 + 0.18 * k) + rng.uniform(-0.5, 0.5)
        a = _rotate(np.array([[g["cx"] - half * 0.8, y + 1], [g["cx"] + half * 0.8, y + 1]]), g["angle"], centre)
        _line(canvas, alpha, a[0], a[1], pleat_tone, 0.6)
    for sd in (-1, 1):  # ear straps
        a = _rotate(np.array([[g["cx"] + sd * half, top + 2.5], [g["cx"] + sd * (half + 4), g["eye_y"] + 1]]),
                    g["angle"], centre)
        _line(canvas, alpha, a[0], a[1], tone * rng.uniform(0.8, 1.0), rng.uniform(0.5, 1.1))
        if rng.random() < 0.6:
            b = _rotate(np.array([[g["cx"] + sd * half * 0.95, bottom - 3], [g["cx"] + sd * (half + 4),
                                                                             g["eye_y"] + 5]]), g["angle"], centre)
            _line(canvas, alpha, b[0], b[1], tone * rng.uniform(0.8, 1.0), rng.uniform(0.5, 1.1))


def _draw_text(canvas, alpha, g, rng):
    n_lines = 1 if rng.random() < 0.75 else 2
    tone = rng.choice([rng.uniform(215, 255), rng.uniform(0, 40), rng.uniform(80, 180)], p=[0.5, 0.35, 0.15])
    opacity = 1.0 if rng.random() < 0.7 else rng.uniform(0.45, 0.9)
    font = int(rng.choice(_FONTS))
    scale = rng.uniform(0.22, 0.6) * SS
    thick = int(rng.integers(1, 3))
    outline = rng.random() < 0.3
    y = rng.uniform(6, 46)
    for _ in range(n_lines):
        text = "".join(rng.choice(list(_TEXT_CHARS), int(rng.integers(2, 11))))
        if rng.random() < 0.3:
            text = text.upper()
        (w, h), _ = cv2.getTextSize(text, font, scale, thick)
        x = rng.uniform(-w * 0.3, max(SIZE * SS - w * 0.7, 1)) / SS
        org = (int(x * SS), int(y * SS))
        if outline:
            cv2.putText(canvas, text, org, font, scale, float(255 - tone), thick + 2, cv2.LINE_AA)
            cv2.putText(alpha, text, org, font, scale, float(opacity), thick + 2, cv2.LINE_AA)
        cv2.putText(canvas, text, org, font, scale, float(tone), thick, cv2.LINE_AA)
        cv2.putText(alpha, text, org, font, scale, float(opacity), thick, cv2.LINE_AA)
        y = min(y + h / SS + rng.uniform(2, 5), 47)


def _draw_object(canvas, alpha, g, rng):
    """A held or foreground object: a phone, a cup, a microphone, a hat brim, a scarf, a paper."""
    tone = rng.uniform(0, 255)
    kind = rng.choice(["phone", "round", "band", "blob"])
    if kind == "phone":
        cx, cy = g["cx"] + rng.choice([-1, 1]) * rng.uniform(8, 20), rng.uniform(18, 40)
        pts = _superellipse(cx, cy, rng.uniform(4, 7), rng.uniform(8, 13), 6, angle=rng.uniform(-30, 30))
    elif kind == "round":
        cx, cy = rng.uniform(6, 42), rng.uniform(22, 48)
        pts = _superellipse(cx, cy, rng.uniform(4, 9), rng.uniform(4, 12), rng.uniform(2, 3),
                            angle=rng.uniform(0, 180))
    elif kind == "band":  # a scarf, a brim or a bar across the frame
        y = rng.choice([rng.uniform(2, 12), rng.uniform(36, 46)])
        h = rng.uniform(3, 8)
        pts = _rotate(np.array([[-5, y - h], [53, y - h], [53, y + h], [-5, y + h]]), rng.uniform(-15, 15),
                      (24, y))
    else:
        n = int(rng.integers(5, 9))
        cx, cy = rng.uniform(8, 40), rng.uniform(14, 44)
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(4, 11, n)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)
    _fill(canvas, alpha, pts, tone)
    if rng.random() < 0.5:  # a second tone: a screen, a label, a stripe
        c = pts.mean(0)
        inner = c + (pts - c) * rng.uniform(0.4, 0.8)
        _fill(canvas, alpha, inner, np.clip(tone + rng.uniform(-90, 90), 0, 255))


_DRAW = {"hand": _draw_hand, "sunglasses": _draw_sunglasses, "mask": _draw_mask, "text": _draw_text,
         "object": _draw_object}


def _noise_levels(images: np.ndarray) -> np.ndarray:
    """Robust estimate of each image's pixel noise (MAD of a Laplacian residual, in grey levels)."""
    x = images.astype(np.float32)
    residual = (4 * x[:, 1:-1, 1:-1] - x[:, :-2, 1:-1] - x[:, 2:, 1:-1] - x[:, 1:-1, :-2] - x[:, 1:-1, 2:]).reshape(
        len(images), -1)
    mad = np.median(np.abs(residual - np.median(residual, axis=1, keepdims=True)), axis=1)
    return (1.4826 * mad / np.sqrt(20.0)).astype(np.float32)


def occluder_layer(kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, bool]:
    """One procedurally drawn occluder: tone (float32 48×48), opacity (float32 48×48, 0..1) and whether the
    tone is relative to the face's skin tone (hands: ``SKIN_REFERENCE`` means "the skin's grey level").

    The occluder gets a lighting ramp, mild low-frequency texture and a random blur, so that it is not
    trivially separable from a photograph by its flatness or sharpness.
    """
    if kind not in _DRAW:
        raise WorkbenchError(f"unknown occluder kind {kind!r}; choose one of {', '.join(OCCLUDER_KINDS)}")
    big = SIZE * SS
    canvas = np.zeros((big, big), np.float32)
    alpha = np.zeros((big, big), np.float32)
    _DRAW[kind](canvas, alpha, _face_geometry(rng), rng)
    occ = cv2.resize(canvas, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    a = np.clip(cv2.resize(alpha, (SIZE, SIZE), interpolation=cv2.INTER_AREA), 0, 1)
    # anti-aliased edges darken the occluder's rim towards 0; un-premultiply where coverage is partial
    occ = np.where(a > 1e-3, occ / np.maximum(a, 1e-3), 0)
    # shading and texture on the occluder itself
    ramp = np.linspace(-1, 1, SIZE, dtype=np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    occ = occ * (1 + rng.uniform(0, 0.25) * (np.cos(theta) * ramp[None, :] + np.sin(theta) * ramp[:, None]))
    coarse = rng.standard_normal((6, 6)).astype(np.float32)
    occ = occ + rng.uniform(0, 8) * cv2.resize(coarse, (SIZE, SIZE), interpolation=cv2.INTER_CUBIC)
    blur = rng.uniform(0, 1.0) if rng.random() < 0.7 else 0.0
    if blur > 0.2:
        occ_a = cv2.GaussianBlur(occ * a, (0, 0), blur)
        a = cv2.GaussianBlur(a, (0, 0), blur)
        occ = np.where(a > 1e-3, occ_a / np.maximum(a, 1e-3), 0)
    return occ.astype(np.float32), a.astype(np.float32), kind == "hand"


def composite(images: np.ndarray, occ: np.ndarray, alpha: np.ndarray, relative: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    """Occluder layers (N×48×48 tone and opacity, N relative flags) over uint8 N×48×48 images, vectorised.

    Relative (hand) tones are scaled to each image's skin tone; the occluder gets the image's own noise level.
    """
    images = np.asarray(images)
    x = images.astype(np.float32)
    scale = np.where(np.asarray(relative), _skin_tones(images) / SKIN_REFERENCE, 1.0).astype(np.float32)
    noise = _noise_levels(images) * rng.uniform(0.7, 1.3, len(images)).astype(np.float32)
    tone = occ * scale[:, None, None] + noise[:, None, None] * rng.standard_normal(x.shape, dtype=np.float32)
    out = x * (1 - alpha) + tone * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def paste_occluder(image: np.ndarray, kind: str, rng: np.random.Generator,
                   return_mask: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """``image`` (uint8 48×48) with a procedurally drawn occluder of ``kind`` (one of ``OCCLUDER_KINDS``)
    composited onto it; with ``return_mask`` also the occluder's opacity (float32 48×48, 0..1)."""
    image = np.asarray(image)
    if image.shape != (SIZE, SIZE):
        raise WorkbenchError(f"paste_occluder needs one 48×48 image, got shape {image.shape}")
    occ, a, relative = occluder_layer(kind, rng)
    out = composite(image[None], occ[None], a[None], np.array([relative]), rng)[0]
    return (out, a) if return_mask else out


def occluder_bank(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` occluder layers of random kinds (``KIND_WEIGHTS``): tones, opacities, relative flags, kind indices."""
    kinds = rng.choice(len(OCCLUDER_KINDS), n, p=KIND_WEIGHTS / KIND_WEIGHTS.sum())
    layers = [occluder_layer(OCCLUDER_KINDS[k], rng) for k in kinds]
    return (np.stack([t for t, _, _ in layers]), np.stack([a for _, a, _ in layers]),
            np.array([r for _, _, r in layers]), kinds)
