"""Concepts the offline profile can see: WordNet noun synsets over ImageNet-1k classes, plus
photographic properties measured by image statistics.

An image is described by its 1000 ImageNet class probabilities and a few image statistics.
A *concept* is a set of classes (a WordNet synset and everything beneath it: "dogs" is the
118 dog breeds) or a photographic property; an image's score for a class concept is the
summed probability of its classes, for a property a 0..1 ramp over one statistic.

Texts are turned into *concept weights* over the 1000 classes and the properties, so that
``score = image_vector @ weights``: an exact name ("dogs", "black and white photos") gives
the concept's indicator, "X and Y" the union of both, and anything else a MiniLM-similarity
mix of the nearest concepts (see :mod:`visdiff.scorers.offline`).

The class table is ``visdiff/data/imagenet_concepts.json``, generated from WordNet 3.0 by
``scripts/build_concepts.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources

import numpy as np
import torch

N_CLASSES = 1000
# The first five come from pixels (:func:`image_statistics`); the offline scorer appends
# "uprightness": the log of the classifier's top probability on the image minus that on the
# image turned 180 degrees (an upside-down photo looks more familiar turned over).
STATISTICS = ("colourfulness", "brightness", "sharpness", "flatness", "white_border", "uprightness")


@dataclass(frozen=True)
class Concept:
    """One WordNet synset: ``classes`` are the ImageNet class indices beneath it (itself
    included), ``parents`` indices into the concept table, ``phrase`` a plural description.
    A scene concept has no parents and lists its ``members`` (indices of the WordNet
    concepts it unites). ``familiarity``: how often the synset's words carry this sense in
    WordNet's sense-tagged corpus ("dogs" 42, "canines" 0), a proxy for the name a person
    would use; for a scene concept, that of its most familiar member."""

    wnid: str
    name: str
    phrase: str
    aliases: tuple[str, ...]
    depth: int
    parents: tuple[int, ...]
    classes: tuple[int, ...]
    members: tuple[int, ...] = ()
    familiarity: int = 0


@dataclass(frozen=True)
class Ramp:
    """A linear 0..1 ramp over one image statistic: 0 at ``zero``, 1 at ``one`` (either
    order), flat outside, so images clearly on one side tie and rank statistics only see the
    ambiguous zone."""

    statistic: str
    zero: float
    one: float

    def score(self, statistics: torch.Tensor) -> torch.Tensor:
        values = statistics[:, STATISTICS.index(self.statistic)]
        return ((values - self.zero) / (self.one - self.zero)).clamp(0.0, 1.0)


@dataclass(frozen=True)
class PhotoProperty:
    """A photographic property: the product of its ramps ("line drawing" is colourless and
    on a white background at once)."""

    name: str
    phrase: str
    aliases: tuple[str, ...]
    ramps: tuple[Ramp, ...]

    def score(self, statistics: torch.Tensor) -> torch.Tensor:
        score = self.ramps[0].score(statistics)
        for ramp in self.ramps[1:]:
            score = score * ramp.score(statistics)
        return score


# Ramps from the spread of these statistics over devbench photos (224 px crops): greyscale
# JPEGs have colourfulness 0, colour photos mostly above 0.1; darkened photos have
# brightness 0.07-0.2, ordinary ones mostly above 0.25; sharpness is 0.65-1.35 for sharp
# photos and 0.27-0.76 for blurred ones (hard-edged drawings reach 2). Uprightness is -0.7
# median for devbench's upside-down photos (90th percentile 0.15) and 0.7 for upright ones
# (10th percentile -0.03). These were set looking at devbench's transform pairs.
#
# The drawing ramps (flatness of the filled, non-white part; white image border) are chosen
# on one half of the development set built by scripts/build_devset.py and measured on the
# other (benchmarks/bench_devbench_offline.py, DRAWING_GRID there).
DRAWING_RAMP = Ramp("flatness", zero=0.15, one=0.35)
WHITE_BORDER_RAMP = Ramp("white_border", zero=0.2, one=0.5)


def photo_properties(drawing: Ramp = DRAWING_RAMP, white_border: Ramp = WHITE_BORDER_RAMP) -> tuple[PhotoProperty, ...]:
    """The photographic properties, with the given drawing and white-border ramps."""
    colourless = Ramp("colourfulness", zero=0.05, one=0.01)
    photographic = Ramp(drawing.statistic, zero=drawing.one, one=drawing.zero)
    # Line art is colourless strokes on white: its few filled pixels are edges, never flat,
    # so it is told from a greyscale photo by its white border rather than by flatness.
    framed = Ramp(white_border.statistic, zero=white_border.one, one=white_border.zero)
    return (
        PhotoProperty(
            "black and white photo", "black and white photos",
            ("black and white photo", "black and white photos", "black-and-white photos",
             "greyscale photos", "grayscale photos", "greyscale images", "grayscale images",
             "monochrome photos", "black and white images", "photos without colour",
             "photos without color"),
            (colourless, framed),
        ),
        PhotoProperty(
            "colour photo", "colour photos",
            ("colour photo", "colour photos", "color photo", "color photos", "colourful photos",
             "colorful photos", "colour images", "color images", "vivid colours", "vivid colors"),
            (Ramp("colourfulness", zero=0.01, one=0.05),),
        ),
        PhotoProperty(
            "dark photo", "dark, underexposed photos",
            ("dark photo", "dark photos", "dark, underexposed photos", "underexposed photos",
             "dark images", "dimly lit photos", "low-light photos", "photos taken at night"),
            (Ramp("brightness", zero=0.28, one=0.12),),
        ),
        PhotoProperty(
            "bright photo", "bright, overexposed photos",
            ("bright photo", "bright photos", "bright, overexposed photos", "overexposed photos",
             "washed-out photos", "bright images"),
            (Ramp("brightness", zero=0.65, one=0.80),),
        ),
        PhotoProperty(
            "blurry photo", "blurry photos",
            ("blurry photo", "blurry photos", "blurred photos", "out-of-focus photos",
             "out of focus photos", "blurry images", "blurred images", "soft-focus photos"),
            (Ramp("sharpness", zero=0.75, one=0.45),),
        ),
        PhotoProperty(
            "upside-down photo", "upside-down photos",
            ("upside-down photo", "upside-down photos", "upside down photos", "inverted photos",
             "photos turned upside down", "rotated photos", "flipped photos", "upside-down images"),
            (Ramp("uprightness", zero=0.3, one=-0.7),),
        ),
        PhotoProperty(
            "drawing", "drawings",
            ("drawing", "drawings", "clipart", "clip art", "clip-art", "illustrations", "cartoons",
             "vector graphics", "graphics", "drawings and clipart", "flat colours", "flat colors"),
            (drawing,),
        ),
        PhotoProperty(
            "line drawing", "line drawings",
            ("line drawing", "line drawings", "line art", "black and white drawings", "outline drawings",
             "sketches", "colouring pages", "coloring pages"),
            (colourless, white_border),
        ),
        PhotoProperty(
            "photograph", "photographs",
            ("photograph", "photographs", "photos", "real photos", "photographic images",
             "photos rather than drawings"),
            (photographic,),
        ),
        PhotoProperty(
            "white background", "objects on a plain white background",
            ("white background", "white backgrounds", "plain white background", "transparent background",
             "transparent backgrounds", "cut-outs", "cutouts", "isolated objects", "objects on white",
             "objects on a plain white background"),
            (white_border,),
        ),
    )


PHOTO_PROPERTIES = photo_properties()


@dataclass(frozen=True)
class ConceptTable:
    """The WordNet concepts over ImageNet-1k classes, in the order of the model's logits."""

    class_wnids: tuple[str, ...]
    concepts: tuple[Concept, ...]

    @cached_property
    def class_concept(self) -> tuple[int, ...]:
        """Concept index of each ImageNet class's own synset."""
        own = {c.wnid: i for i, c in enumerate(self.concepts)}
        return tuple(own[w] for w in self.class_wnids)

    @cached_property
    def membership(self) -> np.ndarray:
        """(1000, n_concepts) float32 0/1: class c lies beneath concept k."""
        matrix = np.zeros((N_CLASSES, len(self.concepts)), np.float32)
        for k, concept in enumerate(self.concepts):
            matrix[list(concept.classes), k] = 1.0
        return matrix

    @cached_property
    def ancestors(self) -> tuple[frozenset[int], ...]:
        """Concept indices above each concept (itself excluded)."""
        out: list[frozenset[int]] = []
        for k in range(len(self.concepts)):
            seen: set[int] = set()
            todo = list(self.concepts[k].parents)
            while todo:
                p = todo.pop()
                if p not in seen:
                    seen.add(p)
                    todo.extend(self.concepts[p].parents)
            out.append(frozenset(seen))
        return tuple(out)


def _data_text(name: str) -> str:
    return resources.files("visdiff").joinpath(f"data/{name}").read_text("utf-8")


@lru_cache(maxsize=1)
def concepts_digest() -> str:
    """Hash of the concept tables and the property definitions: text weights depend on them."""
    text = _data_text("imagenet_concepts.json") + _data_text("scene_concepts.json") + repr(PHOTO_PROPERTIES)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@lru_cache(maxsize=1)
def load_concept_table() -> ConceptTable:
    """The packaged WordNet concepts (``visdiff/data/imagenet_concepts.json``), then the
    scene concepts (``visdiff/data/scene_concepts.json``: unions of WordNet concepts, such as
    "indoor scenes" or "water scenes", outside the WordNet hierarchy)."""
    raw = json.loads(_data_text("imagenet_concepts.json"))
    concepts = [
        Concept(
            wnid=c["wnid"], name=c["name"], phrase=c["phrase"], aliases=tuple(c["aliases"]),
            depth=c["depth"], parents=tuple(c["parents"]), classes=tuple(c["classes"]),
            familiarity=c["familiarity"],
        )
        for c in raw["concepts"]
    ]
    by_phrase = {c.phrase: k for k, c in enumerate(concepts)}
    for scene in json.loads(_data_text("scene_concepts.json"))["concepts"]:
        members = tuple(by_phrase[member] for member in scene["members"])
        classes = sorted({i for k in members for i in concepts[k].classes})
        concepts.append(Concept(wnid=f"scene:{scene['name']}", name=scene["name"], phrase=scene["phrase"],
                                aliases=tuple(scene["aliases"]), depth=0, parents=(), classes=tuple(classes),
                                members=members, familiarity=max(concepts[k].familiarity for k in members)))
    return ConceptTable(class_wnids=tuple(raw["classes"]), concepts=tuple(concepts))


def image_statistics(rgb: torch.Tensor) -> torch.Tensor:
    """(n, 3, H, W) RGB in [0, 1] -> (n, 5): colourfulness, brightness, sharpness, flatness,
    white border.

    colourfulness: mean of max(R,G,B) - min(R,G,B) over the mean of max(R,G,B), a saturation
    that darkening does not change; brightness: mean luminance (Rec. 601); sharpness: mean
    |4-neighbour Laplacian| of luminance over its mean |gradient|: how abruptly edges change,
    whatever their contrast or number (flat clipart regions and dark exposure count for
    neither); flatness: share of the pixels that are not white background whose luminance
    differs from both upper and left neighbours by under 1/255 (flat fills: drawings; a
    photo cut out onto white keeps its texture); white border: share of the outer 4% frame
    that is white (transparent backgrounds are made white when decoded).
    """
    highest = rgb.amax(dim=1)
    chroma = highest - rgb.amin(dim=1)
    colourfulness = chroma.mean(dim=(1, 2)) / highest.mean(dim=(1, 2)).clamp_min(1e-3)
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype, device=rgb.device)
    luminance = (rgb * weights.view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    brightness = luminance.mean(dim=(1, 2, 3))
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=rgb.dtype, device=rgb.device)
    laplacian = torch.nn.functional.conv2d(luminance, kernel.view(1, 1, 3, 3)).abs().mean(dim=(1, 2, 3))
    step_y = (luminance[..., 1:, 1:] - luminance[..., :-1, 1:]).abs()
    step_x = (luminance[..., 1:, 1:] - luminance[..., 1:, :-1]).abs()
    sharpness = laplacian / (step_y.mean(dim=(1, 2, 3)) + step_x.mean(dim=(1, 2, 3))).clamp_min(1e-4)
    white = ((luminance[:, 0] > 0.94) & (chroma < 0.1 * highest)).float()
    filled = 1.0 - white[:, 1:, 1:]
    flat = (torch.maximum(step_x, step_y)[:, 0] < 1.0 / 255).float()
    flatness = (flat * filled).sum(dim=(1, 2)) / filled.sum(dim=(1, 2)).clamp_min(1.0)
    height, width = white.shape[1:]
    band_y, band_x = max(1, height // 25), max(1, width // 25)
    frame_area = height * width - (height - 2 * band_y) * (width - 2 * band_x)
    white_border = (white.sum(dim=(1, 2)) - white[:, band_y:-band_y, band_x:-band_x].sum(dim=(1, 2))) / frame_area
    return torch.stack([colourfulness, brightness, sharpness, flatness, white_border], dim=1)


def property_scores(statistics: torch.Tensor, properties: tuple[PhotoProperty, ...] = PHOTO_PROPERTIES) -> torch.Tensor:
    """(n, len(STATISTICS)) statistics -> (n, len(properties)) scores in [0, 1]."""
    return torch.stack([p.score(statistics) for p in properties], dim=1)


_PREFIX = re.compile(
    r"^(?:(?:there are|contains?|has|have|more|mostly|many|some|a|an|the)\s+)*"
    r"(?:(?:photos?|photographs?|images?|pictures?|shots?)\s+(?:of|showing|with|containing)\s+)?"
    r"(?:(?:a|an|the|some|many)\s+)?"
)


def normalise_text(text: str) -> str:
    """Lower case, single spaces, no trailing punctuation, no 'photos of'/'a' lead-in."""
    text = " ".join(text.lower().split()).strip(" .;:!")
    return _PREFIX.sub("", text, count=1) or text


@lru_cache(maxsize=1)
def exact_index() -> dict[str, tuple[str, int]]:
    """{normalised name: ('class', concept index) or ('property', property index)}.

    Phrases are unique; where several synsets share a bare alias ("crane"), the one over
    most classes wins, as in the phrase table.
    """
    table = load_concept_table()
    index: dict[str, tuple[str, int]] = {}
    order = sorted(range(len(table.concepts)), key=lambda k: -len(table.concepts[k].classes))
    for k in order:
        for alias in table.concepts[k].aliases:
            index.setdefault(normalise_text(alias), ("class", k))
    for k in range(len(table.concepts)):
        index[normalise_text(table.concepts[k].phrase)] = ("class", k)
    for k, prop in enumerate(PHOTO_PROPERTIES):
        for alias in (prop.name, prop.phrase, *prop.aliases):
            index[normalise_text(alias)] = ("property", k)
    return index


def concept_vector(kind: str, k: int) -> np.ndarray:
    """Weights over the 1000 classes then the properties for one concept or property."""
    vector = np.zeros(N_CLASSES + len(PHOTO_PROPERTIES), np.float32)
    if kind == "class":
        vector[list(load_concept_table().concepts[k].classes)] = 1.0
    else:
        vector[N_CLASSES + k] = 1.0
    return vector


def exact_weights(text: str) -> np.ndarray | None:
    """Concept weights of a text that names concepts exactly, else ``None``.

    A whole name wins ("black and white photos"); otherwise "X and Y", "X, Y" or "X or Y"
    is the union of its parts when every part is a name ("cars and trucks").
    """
    index = exact_index()
    text = normalise_text(text)
    if text in index:
        return concept_vector(*index[text])
    parts = [normalise_text(p) for p in re.split(r",|\band\b|\bor\b|&", text) if p.strip()]
    if len(parts) > 1 and all(p in index for p in parts):
        return np.maximum.reduce([concept_vector(*index[p]) for p in parts])
    return None


def concept_names() -> list[tuple[str, str, int]]:
    """(text, kind, index) rows for similarity matching: each concept's name and every alias
    of each photographic property."""
    table = load_concept_table()
    rows = [(c.name, "class", k) for k, c in enumerate(table.concepts)]
    rows += [(alias, "property", k) for k, p in enumerate(PHOTO_PROPERTIES) for alias in (p.name, *p.aliases)]
    return rows
