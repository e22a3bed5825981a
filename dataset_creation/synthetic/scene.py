"""2-D synthetic scenes with exact ground truth: textured backgrounds plus class objects painted in depth order.

Every object is rasterised once into a mask; the instance map is the painter's-order composition of
those masks, and the image is painted from the same masks, so boxes, instance masks and label maps
agree with the pixels exactly. Objects that end up mostly hidden, or that would punch a hole into an
earlier object (COCO polygons cannot express holes), are dropped before painting.
Everything is drawn with OpenCV and vectorised numpy; all randomness comes from the ``rng`` passed in.
"""

from __future__ import annotations

import colorsys
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from dataset_creation.synthetic.ade20k_classes import ADE20K_CLASSES
from dataset_creation.synthetic.shapes import CLUTTER, MAIN, SECOND, Appearance, appearance

_SHIFT = 4  # cv2.fillPoly sub-pixel bits


ADE_LABEL = {name: k for k, name in enumerate(ADE20K_CLASSES, 1)}

@dataclass
class Placed:
    """An object rasterised at its place: part masks inside its bounding box (x1, y1 exclusive)."""

    name: str
    app: Appearance
    cx: float
    cy: float
    scale: float  # pixels per object-frame unit in y
    stretch: float  # extra x scale
    angle: float  # radians
    x0: int
    y0: int
    x1: int
    y1: int
    part_masks: list[np.ndarray]  # uint8 (y1-y0, x1-x0), one per app.parts
    brightness: float = 1.0
    group: int = -1  # crowd group id (>= 0: annotated together as one iscrowd region)
    mask: np.ndarray = field(init=False)  # bool crop: union of the parts, seams between abutting parts closed

    def __post_init__(self) -> None:
        union = np.zeros(self.part_masks[0].shape, bool)
        for m in self.part_masks:
            union |= m.astype(bool)
        self.mask = fill_holes4(union)

    def tag_mask(self, tag: str) -> np.ndarray:
        out = np.zeros((self.y1 - self.y0, self.x1 - self.x0), bool)
        for part, m in zip(self.app.parts, self.part_masks, strict=True):
            if part.tag == tag:
                out |= m.astype(bool)
        return out


@dataclass
class SceneObject:
    """One annotated object of a finished scene: its visible mask in the full image."""

    name: str
    mask: np.ndarray  # bool (H, W), visible pixels
    crowd: bool = False
    head: np.ndarray | None = None  # bool (H, W), visible head pixels (pets)
    drawn_area: int = 0  # pixels before occlusion


@dataclass
class Scene:
    image: np.ndarray  # uint8 (H, W, 3)
    objects: list[SceneObject] = field(default_factory=list)
    labels: np.ndarray | None = None  # uint8 (H, W) semantic labels where the composer makes them (ADE20K)


# ---- colours, textures, backgrounds ------------------------------------------------------------------------


def muted_color(
    rng: np.random.Generator, sat: tuple[float, float] = (0.05, 0.35), val: tuple[float, float] = (0.35, 0.9)
) -> np.ndarray:
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val))
    return np.array([r, g, b], np.float32) * 255


def _smooth_field(
    rng: np.random.Generator, width: int, height: int, cells: int = 4, channels: int = 1
) -> np.ndarray:
    grid = rng.standard_normal((cells, cells, channels)).astype(np.float32)
    out = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    return out.reshape(height, width, channels)


def _texture(app: Appearance, u: np.ndarray, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    main = np.array(app.main, np.float32)
    tex = np.array(app.texture_color, np.float32)
    kind = app.texture
    if kind == "solid":
        return np.broadcast_to(main, u.shape + (3,)).copy()
    if kind == "gradient":
        t = np.clip((v + 1) / 2, 0, 1)[..., None]
        return main * (1 - t) + tex * t
    if kind == "ticked":
        noise = rng.standard_normal(u.shape).astype(np.float32)[..., None]
        return main * (1 + 0.14 * noise)
    if kind == "stripes":
        sel = ((u * 0.8 + v * 0.6) * 3.0) % 1.0 < 0.5
    elif kind == "dots":
        du, dv = (u / 0.34) % 1 - 0.5, (v / 0.34) % 1 - 0.5
        sel = du * du + dv * dv < 0.28**2
    elif kind == "spots":
        row = np.floor(v / 0.5)
        du, dv = (u / 0.5 + 0.5 * row) % 1 - 0.5, (v / 0.5) % 1 - 0.5
        sel = du * du + 1.4 * dv * dv < 0.3**2
    elif kind == "checker":
        sel = (np.floor(u * 2.2) + np.floor(v * 2.2)) % 2 == 1
    elif kind == "rings":
        sel = (np.sqrt(u * u + v * v) * 3.5) % 1 < 0.5
    else:
        raise ValueError(f"unknown texture {kind!r}")
    return np.where(sel[..., None], tex, main)


def background(rng: np.random.Generator, width: int, height: int, kind: str | None = None) -> np.ndarray:
    """A float32 (H, W, 3) backdrop: gradient, noise, sky, blue or tiles (blue ones test box decoders)."""
    kinds = ("gradient", "noise", "sky", "blue", "tiles")
    kind = kind or str(rng.choice(kinds, p=[0.28, 0.25, 0.15, 0.12, 0.2]))
    yy = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    xx = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    if kind == "gradient":
        a, b = muted_color(rng), muted_color(rng)
        theta = rng.uniform(0, 2 * np.pi)
        t = np.clip(0.5 + (xx - 0.5) * np.cos(theta) + (yy - 0.5) * np.sin(theta), 0, 1)
        img = a * (1 - t) + b * t
    elif kind == "noise":
        base = muted_color(rng)
        img = base + 28 * _smooth_field(rng, width, height, int(rng.integers(3, 7)), 3)
    elif kind == "sky":
        horizon = rng.uniform(0.45, 0.75)
        top = np.array([rng.uniform(30, 80), rng.uniform(90, 140), rng.uniform(200, 245)], np.float32)
        low = np.array([150, 190, 240], np.float32)
        t = np.clip(yy / horizon, 0, 1)
        sky = top * (1 - t) + low * t
        ground = muted_color(rng, val=(0.3, 0.6)) + 12 * _smooth_field(rng, width, height, 5, 3)
        img = np.where(yy < horizon, sky, ground)
    elif kind == "blue":
        base = np.array([rng.uniform(0, 40), rng.uniform(30, 90), rng.uniform(190, 255)], np.float32)
        img = base + 14 * _smooth_field(rng, width, height, 3, 3)
    elif kind == "tiles":
        a = muted_color(rng)
        b = a * rng.uniform(0.8, 0.92)
        tile = int(rng.integers(max(8, min(width, height) // 16), max(12, min(width, height) // 5)))
        ys, xs = np.mgrid[0:height, 0:width]
        img = np.where((((ys // tile) + (xs // tile)) % 2 == 1)[..., None], b, a)
    else:
        raise ValueError(f"unknown background {kind!r}")
    return np.broadcast_to(img, (height, width, 3)).astype(np.float32).copy()


def finish(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uneven illumination and sensor noise, then uint8: photo-like without changing what is where."""
    h, w = canvas.shape[:2]
    light = 1.0 + 0.06 * _smooth_field(rng, w, h, 3, 1)
    noise = rng.normal(0.0, 2.5, canvas.shape).astype(np.float32)
    return np.clip(canvas * light + noise, 0, 255).round().astype(np.uint8)


# ---- placing and painting objects --------------------------------------------------------------------------


def place(
    name: str,
    app: Appearance,
    cx: float,
    cy: float,
    scale: float,
    width: int,
    height: int,
    *,
    angle: float = 0.0,
    stretch: float = 1.0,
    brightness: float = 1.0,
    group: int = -1,
) -> Placed | None:
    """Rasterise ``app`` centred at (cx, cy) (pixel-centre coordinates); None if nothing lands in the image."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    polys = [(p.points * np.array([scale * stretch, scale])) @ rot.T + np.array([cx, cy]) for p in app.parts]
    allpts = np.concatenate(polys)
    x0 = max(0, int(np.floor(allpts[:, 0].min())) - 1)
    y0 = max(0, int(np.floor(allpts[:, 1].min())) - 1)
    x1 = min(width, int(np.ceil(allpts[:, 0].max())) + 2)
    y1 = min(height, int(np.ceil(allpts[:, 1].max())) + 2)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    masks = []
    for pts in polys:
        m = np.zeros((y1 - y0, x1 - x0), np.uint8)
        fixed = np.round((pts - np.array([x0, y0])) * (1 << _SHIFT)).astype(np.int32)
        cv2.fillPoly(m, [fixed], 1, lineType=cv2.LINE_8, shift=_SHIFT)
        masks.append(m)
    placed = Placed(name, app, cx, cy, scale, stretch, angle, x0, y0, x1, y1, masks, brightness, group)
    if not placed.mask.any():
        return None
    return placed


def paint(
    canvas: np.ndarray, obj: Placed, rng: np.random.Generator, visible: np.ndarray | None = None
) -> None:
    """Paint ``obj``'s ``visible`` pixels (bool crop; default all) on ``canvas``: MAIN parts textured, others solid."""
    ys, xs = np.mgrid[obj.y0 : obj.y1, obj.x0 : obj.x1].astype(np.float32)
    dx, dy = xs - obj.cx, ys - obj.cy
    c, s = np.cos(obj.angle), np.sin(obj.angle)
    u = (c * dx + s * dy) / (obj.scale * obj.stretch)
    v = (-s * dx + c * dy) / obj.scale
    shade = ((1.06 - 0.12 * np.clip((v + 1) / 2, 0, 1)) * obj.brightness)[..., None]
    main = _texture(obj.app, u, v, rng) * shade
    crop = canvas[obj.y0 : obj.y1, obj.x0 : obj.x1]
    visible = obj.mask if visible is None else visible
    owner = np.zeros(visible.shape, np.int32)  # which part shows at each pixel: the last one drawn
    for j, m in enumerate(obj.part_masks):
        owner[m.astype(bool)] = j
    for j, part in enumerate(obj.app.parts):
        sel = visible & (owner == j)
        if part.role == MAIN:
            crop[sel] = main[sel]
        else:
            color = np.array(obj.app.second if part.role == SECOND else obj.app.accent, np.float32)
            crop[sel] = (color * shade)[sel]


def instance_map(objs: Sequence[Placed], width: int, height: int) -> np.ndarray:
    """int32 (H, W): 0 background, k = objs[k - 1] where it is the front-most object."""
    ids = np.zeros((height, width), np.int32)
    for k, o in enumerate(objs, 1):
        ids[o.y0 : o.y1, o.x0 : o.x1][o.mask] = k
    return ids


def settled_map(objs: Sequence[Placed], width: int, height: int) -> np.ndarray:
    """``instance_map`` where no object's visible region keeps a 4-connected hole (see ``fill_holes4``).

    The image is painted from this map, so what is annotated is exactly what is drawn.
    """
    ids = instance_map(objs, width, height)
    for k, o in enumerate(objs, 1):
        if o.group >= 0:
            continue  # crowd regions are RLE: any shape is exact
        crop = ids[o.y0 : o.y1, o.x0 : o.x1]
        vis = crop == k
        crop[fill_holes4(vis) & ~vis & o.mask] = k
    return ids


def fill_holes4(mask: np.ndarray) -> np.ndarray:
    """``mask`` plus every background pixel not 4-connected to the outside.

    Such pixels (a seam where two parts abut, a notch open only at a corner) are background only
    under 4-connectivity; a traced outline (and so a COCO polygon) encloses them, so they are made
    part of the object to keep pixels, masks and polygons identical.
    """
    bg = np.pad(~mask, 1, constant_values=True).astype(np.uint8)
    cv2.floodFill(bg, None, (0, 0), 2, flags=4)
    return mask | (bg[1:-1, 1:-1] == 1)


def _filled(mask: np.ndarray) -> np.ndarray:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = np.zeros(mask.shape, np.uint8)
    cv2.drawContours(out, contours, -1, 1, thickness=cv2.FILLED)
    return out.astype(bool)


def prune(
    objs: list[Placed], width: int, height: int, min_visible: float = 0.4, min_pixels: int = 30
) -> list[Placed]:
    """Drop objects mostly hidden by later ones, and later objects that would leave a hole in an earlier one."""
    objs = list(objs)
    for _ in range(len(objs) + 1):
        ids = instance_map(objs, width, height)
        drop: set[int] = set()
        for k, o in enumerate(objs, 1):
            if o.group >= 0:
                continue  # crowd members are annotated as one RLE region: holes and overlaps are fine
            crop = ids[o.y0 : o.y1, o.x0 : o.x1]
            drawn = o.mask
            vis = (crop == k) & drawn
            if vis.sum() < max(min_pixels, min_visible * drawn.sum()):
                drop.add(k)
                continue
            holes = _filled(vis) & ~vis
            if holes.any():
                drop.update(int(i) for i in np.unique(crop[holes]) if i > k)
        if not drop:
            return objs
        objs = [o for k, o in enumerate(objs, 1) if k not in drop]
    return objs


def _random_place(
    rng: np.random.Generator,
    name: str,
    width: int,
    height: int,
    scale: float,
    cx: float,
    cy: float,
    group: int = -1,
) -> Placed | None:
    app = appearance(name)
    angle = rng.uniform(-0.2, 0.2) if app.upright else rng.uniform(-np.pi, np.pi)
    return place(
        name, app, cx, cy, scale, width, height,
        angle=angle, stretch=rng.uniform(0.88, 1.14), brightness=rng.uniform(0.88, 1.1), group=group,
    )  # fmt: skip


def _half_width(name: str, scale: float) -> float:
    x0, _, x1, _ = appearance(name).extent
    return scale * max(abs(x0), abs(x1))


def clutter(rng: np.random.Generator, width: int, height: int, count: int) -> list[Placed]:
    """Unlabelled grey-ish blobs: things in the picture that are no class at all."""
    out = []
    for _ in range(count):
        app = dataclasses.replace(CLUTTER, main=tuple(int(c) for c in muted_color(rng, sat=(0.0, 0.15))))
        scale = rng.uniform(0.05, 0.14) * min(width, height)
        p = place("clutter", app, rng.uniform(0, width), rng.uniform(0, height), scale, width, height,
                  angle=rng.uniform(-np.pi, np.pi), stretch=rng.uniform(0.6, 1.6))  # fmt: skip
        if p is not None:
            out.append(p)
    return out


def scene_objects(objs: Sequence[Placed], ids: np.ndarray) -> list[SceneObject]:
    """Visible masks of the kept objects (``ids`` from ``settled_map``); crowd members merged per group."""
    height, width = ids.shape
    out: list[SceneObject] = []
    groups: dict[int, SceneObject] = {}
    for k, o in enumerate(objs, 1):
        if o.name == "clutter":
            continue
        vis = ids == k
        if o.group >= 0:
            g = groups.get(o.group)
            if g is None:
                g = groups[o.group] = SceneObject(o.name, vis, crowd=True)
                out.append(g)
            else:
                g.mask |= vis
            g.drawn_area += int(o.mask.sum())
            continue
        head = None
        if any(p.tag == "head" for p in o.app.parts):
            head = np.zeros((height, width), bool)
            head[o.y0 : o.y1, o.x0 : o.x1] = o.tag_mask("head")
            head &= vis
        out.append(SceneObject(o.name, vis, head=head, drawn_area=int(o.mask.sum())))
    return [o for o in out if o.mask.any()]


def render(
    rng: np.random.Generator, canvas: np.ndarray, objs: Sequence[Placed], ids: np.ndarray
) -> np.ndarray:
    """Paint every object where ``ids`` shows it, then ``finish``."""
    for k, o in enumerate(objs, 1):
        paint(canvas, o, rng, ids[o.y0 : o.y1, o.x0 : o.x1] == k)
    return finish(canvas, rng)


def _finish_scene(
    rng: np.random.Generator, canvas: np.ndarray, objs: list[Placed], labels: np.ndarray | None = None
) -> Scene:
    height, width = canvas.shape[:2]
    ids = settled_map(objs, width, height)
    image = render(rng, canvas, objs, ids)
    scene = Scene(image, scene_objects(objs, ids), labels)
    if labels is not None:
        for k, o in enumerate(objs, 1):
            labels[ids == k] = 0 if o.name == "clutter" else ADE_LABEL[o.name]
    return scene


# ---- composers ---------------------------------------------------------------------------------------------


def compose_objects(
    rng: np.random.Generator,
    width: int,
    height: int,
    classes: Sequence[str],
    *,
    max_objects: int = 6,
    max_classes: int = 3,
    size_range: tuple[float, float] = (0.08, 0.26),
    touch_p: float = 0.35,
    crowd: str | None = None,
    empty: bool = False,
    backdrop: str | None = None,
) -> Scene:
    """Several instances of a few classes, sometimes touching or overlapping, over a random backdrop.

    ``crowd``: also draw a tight cluster of many small instances of that class (one iscrowd region).
    ``empty``: background and unlabelled clutter only (an image without annotations).
    ``backdrop``: force a ``background`` kind (e.g. "blue"); random otherwise.
    """
    canvas = background(rng, width, height, backdrop)
    short = min(width, height)
    objs: list[Placed] = clutter(rng, width, height, int(rng.integers(0, 3)) + (2 if empty else 0))
    if crowd is not None:
        gx, gy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
        for _ in range(int(rng.integers(8, 15))):
            p = _random_place(rng, crowd, width, height, rng.uniform(0.03, 0.05) * short,
                              gx + rng.normal(0, 0.09 * short), gy + rng.normal(0, 0.07 * short), group=0)  # fmt: skip
            if p is not None:
                objs.append(p)
    if not empty:
        chosen = list(
            rng.choice(classes, size=int(rng.integers(1, min(max_classes, len(classes)) + 1)), replace=False)
        )
        things: list[Placed] = []
        for _ in range(int(rng.integers(2, max_objects + 1))):
            name = str(rng.choice(chosen))
            scale = rng.uniform(*size_range) * short
            if things and rng.random() < touch_p:
                prev = things[int(rng.integers(len(things)))]
                d = 0.9 * (_half_width(prev.name, prev.scale) + _half_width(name, scale))
                phi = rng.uniform(-np.pi, np.pi)
                cx, cy = prev.cx + d * np.cos(phi), prev.cy + 0.6 * d * np.sin(phi)
            else:
                cx, cy = rng.uniform(0.06, 0.94) * width, rng.uniform(0.08, 0.92) * height
            p = _random_place(rng, name, width, height, scale, cx, cy)
            if p is not None:
                things.append(p)
        objs.extend(things)
    return _finish_scene(rng, canvas, prune(objs, width, height))


def compose_pet(rng: np.random.Generator, width: int, height: int, breed: str) -> Scene:
    """One large pet (cat or dog silhouette in its breed's colours) over a backdrop, maybe with clutter."""
    canvas = background(rng, width, height, str(rng.choice(["gradient", "noise", "tiles", "sky"])))
    objs = clutter(rng, width, height, int(rng.integers(0, 3)))
    app = appearance(breed)
    x0, y0, x1, y1 = app.extent
    scale = rng.uniform(0.5, 0.85) * min(width / (x1 - x0), height / (y1 - y0))
    cx = width / 2 - scale * (x0 + x1) / 2 + rng.uniform(-0.12, 0.12) * width
    cy = height / 2 - scale * (y0 + y1) / 2 + rng.uniform(-0.1, 0.1) * height
    pet = place(breed, app, cx, cy, scale, width, height, angle=rng.uniform(-0.15, 0.15),
                stretch=rng.uniform(0.9, 1.1), brightness=rng.uniform(0.9, 1.08))  # fmt: skip
    return _finish_scene(rng, canvas, prune(objs + [pet], width, height) if pet is not None else objs)


def compose_single(rng: np.random.Generator, width: int, height: int, name: str | None) -> Scene:
    """A classification photo: one object of ``name`` filling much of the frame (None: background only)."""
    canvas = background(rng, width, height)
    objs = clutter(rng, width, height, int(rng.integers(0, 3)) + (3 if name is None else 0))
    if name is not None:
        app = appearance(name)
        x0, y0, x1, y1 = app.extent
        scale = rng.uniform(0.55, 0.85) * min(width / (x1 - x0), height / (y1 - y0))
        cx = width / 2 - scale * (x0 + x1) / 2 + rng.uniform(-0.08, 0.08) * width
        cy = height / 2 - scale * (y0 + y1) / 2 + rng.uniform(-0.08, 0.08) * height
        angle = rng.uniform(-0.15, 0.15) if app.upright else rng.uniform(-np.pi, np.pi)
        obj = place(name, app, cx, cy, scale, width, height, angle=angle, stretch=rng.uniform(0.9, 1.1),
                    brightness=rng.uniform(0.9, 1.08))  # fmt: skip
        if obj is not None:
            objs = prune(objs + [obj], width, height)
    return _finish_scene(rng, canvas, objs)

