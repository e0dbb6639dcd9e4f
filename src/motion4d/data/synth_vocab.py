"""The captioned synthetic dataset's vocabulary, caption templates and caption parser.

This vocabulary is a contract: benchmarks outside the package write prompts from it.

* shapes :data:`SHAPES`, colours :data:`COLOURS`, motions :data:`MOTIONS` (the canonical names);
* synonyms per word (:data:`SHAPE_WORDS`, :data:`COLOUR_WORDS`, and per motion three grammatical forms in
  :data:`MOTION_WORDS`: ``adj`` before the noun, ``ing`` after it, ``verb`` as a finite verb);
* :data:`TRAIN_TEMPLATES` (captions of training samples) and :data:`HELD_OUT_TEMPLATES` (never used for a
  training caption: the paraphrase test), with the slots ``{colour}``, ``{shape}``, ``{adj}``, ``{ing}``,
  ``{verb}``; "a" becomes "an" before a vowel;
* :func:`parse_caption` reads any caption made from these (any template, any synonym) back into
  ``(shape, colour, motion)``; a word it does not know is a :class:`~motion4d.errors.DataError`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from motion4d.errors import DataError

SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "cube": ("cube", "box", "block"),
    "sphere": ("sphere", "ball", "orb"),
    "cone": ("cone", "party hat"),
    "cylinder": ("cylinder", "drum", "barrel"),
    "torus": ("torus", "ring", "donut", "doughnut"),
    "pyramid": ("pyramid", "square pyramid"),
}
"""Shape → its words (the first is the canonical name)."""

COLOUR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red", "crimson", "scarlet"),
    "orange": ("orange", "tangerine"),
    "yellow": ("yellow", "lemon"),
    "green": ("green", "emerald"),
    "cyan": ("cyan", "turquoise", "aqua"),
    "blue": ("blue", "sapphire"),
    "purple": ("purple", "violet"),
    "pink": ("pink", "rose"),
}
"""Colour → its words (the first is the canonical name)."""

MOTION_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "bouncing": {
        "adj": ("bouncing", "bobbing"),
        "ing": ("bouncing", "bouncing up and down", "jumping up and down", "bobbing up and down"),
        "verb": ("bounces", "bounces up and down", "jumps up and down", "bobs up and down"),
    },
    "jumping": {
        "adj": ("jumping", "hopping", "leaping"),
        "ing": ("jumping", "hopping", "leaping", "jumping once", "making a single hop"),
        "verb": ("jumps", "hops", "leaps", "jumps once", "makes a single hop"),
    },
    "sliding": {
        "adj": ("sliding", "gliding"),
        "ing": ("sliding", "gliding", "sliding to the right", "moving from left to right", "sliding left to right"),
        "verb": ("slides", "glides", "slides to the right", "moves from left to right", "slides left to right"),
    },
    "orbiting": {
        "adj": ("orbiting", "circling"),
        "ing": ("orbiting", "circling", "going in circles", "moving in a circle", "circling around"),
        "verb": ("orbits", "circles", "goes in circles", "moves in a circle", "circles around"),
    },
    "spinning": {
        "adj": ("spinning", "rotating", "twirling"),
        "ing": ("spinning", "rotating", "twirling", "spinning around", "turning in place", "spinning in place"),
        "verb": ("spins", "rotates", "twirls", "spins around", "turns in place", "spins in place"),
    },
    "swaying": {
        "adj": ("swaying", "rocking", "wobbling"),
        "ing": ("swaying", "rocking", "wobbling", "swaying side to side", "tilting side to side"),
        "verb": ("sways", "rocks", "wobbles", "sways side to side", "tilts side to side"),
    },
    "pulsing": {
        "adj": ("pulsing", "pulsating", "throbbing"),
        "ing": ("pulsing", "pulsating", "throbbing", "growing and shrinking", "expanding and contracting"),
        "verb": ("pulses", "pulsates", "throbs", "grows and shrinks", "expands and contracts"),
    },
    "bending": {
        "adj": ("bending", "flexing", "wiggling"),
        "ing": ("bending", "flexing", "wiggling", "waving", "bending back and forth"),
        "verb": ("bends", "flexes", "wiggles", "waves", "bends back and forth"),
    },
}
"""Motion → its phrases in each slot form: ``adj`` (single words before the noun: "a bouncing box"),
``ing`` (after the noun: "a box bouncing up and down"), ``verb`` ("the box bounces up and down")."""

SHAPES: tuple[str, ...] = tuple(SHAPE_WORDS)
"""cube, sphere, cone, cylinder, torus, pyramid."""
COLOURS: tuple[str, ...] = tuple(COLOUR_WORDS)
"""red, orange, yellow, green, cyan, blue, purple, pink."""
MOTIONS: tuple[str, ...] = tuple(MOTION_WORDS)
"""bouncing, jumping, sliding, orbiting, spinning, swaying, pulsing, bending."""

TRAIN_TEMPLATES: tuple[str, ...] = (
    "a {colour} {shape} {ing}",
    "a {adj} {colour} {shape}",
    "the {colour} {shape} {verb}",
    "a {colour} {shape} that {verb}",
    "a {colour} {shape} is {ing}",
    "{colour} {shape}, {ing}",
    "a {shape} in {colour}, {ing}",
    "the {adj} {shape} is {colour}",
    "a {colour} colored {shape} {ing}",
    "there is a {colour} {shape} {ing}",
    "one {colour} {shape} {verb}",
    "a {colour} {shape} which {verb}",
)
"""Templates of training captions."""

HELD_OUT_TEMPLATES: tuple[str, ...] = (
    "watch the {colour} {shape} as it {verb}",
    "{ing}, the {shape} is {colour}",
    "a {shape} painted {colour} that keeps {ing}",
    "an animation of a {colour} {shape} {ing}",
)
"""Templates never used for a training caption (paraphrase test)."""

FILLER_WORDS: frozenset[str] = frozenset(
    "a an the and that which is in colored coloured there one watch as it painted keeps animation of".split()
)
"""Words the templates add around the slots; they carry no attribute."""

_SLOT = re.compile(r"\{(colour|shape|adj|ing|verb)\}")
_MAX_PHRASE = 6


def _phrase_table() -> dict[tuple[str, ...], tuple[str, str]]:
    table: dict[tuple[str, ...], tuple[str, str]] = {}
    for kind, words in (("shape", SHAPE_WORDS), ("colour", COLOUR_WORDS)):
        for name, syns in words.items():
            for s in syns:
                table[tuple(s.split())] = (kind, name)
    for name, forms in MOTION_WORDS.items():
        for phrases in forms.values():
            for s in phrases:
                key = tuple(s.split())
                if table.get(key, ("motion", name)) != ("motion", name):
                    raise AssertionError(f"motion phrase {s!r} names two motions")
                table[key] = ("motion", name)
    assert max(len(k) for k in table) <= _MAX_PHRASE
    return table


PHRASES: dict[tuple[str, ...], tuple[str, str]] = _phrase_table()
"""Every known phrase (as a word tuple) → ``(kind, canonical name)`` with kind shape / colour / motion."""


def known_words() -> frozenset[str]:
    """Every single word a caption may contain."""
    return frozenset(w for k in PHRASES for w in k) | FILLER_WORDS


def tokenize(text: str) -> list[str]:
    """Lower-case words of ``text`` (punctuation and hyphens are spaces)."""
    return re.sub(r"[^a-z']+", " ", text.lower().replace("-", " ")).split()


def parse_caption(text: str) -> tuple[str, str, str]:
    """``(shape, colour, motion)`` canonical names of a caption in the vocabulary.

    The words are matched greedily, longest phrase first ("jumps up and down" is bouncing, "jumps" alone is
    jumping); template filler words are skipped. A word that is neither, a caption without exactly one
    shape, one colour and one motion, raises :class:`~motion4d.errors.DataError` naming the word or slot.
    """
    words = tokenize(text)
    found: dict[str, set[str]] = {"shape": set(), "colour": set(), "motion": set()}
    i = 0
    while i < len(words):
        for n in range(min(_MAX_PHRASE, len(words) - i), 0, -1):
            hit = PHRASES.get(tuple(words[i : i + n]))
            if hit is not None:
                found[hit[0]].add(hit[1])
                i += n
                break
        else:
            if words[i] not in FILLER_WORDS:
                raise DataError(f"unknown word {words[i]!r} in caption {text!r}")
            i += 1
    for kind, names in found.items():
        if len(names) != 1:
            what = "no" if not names else "more than one"
            raise DataError(f"caption {text!r} names {what} {kind} ({', '.join(sorted(names)) or 'one of the vocabulary is needed'})")
    return found["shape"].pop(), found["colour"].pop(), found["motion"].pop()


def motion_slot(template: str) -> str:
    """The motion slot form ("adj", "ing" or "verb") of ``template`` (each template has exactly one)."""
    slots = [m for m in _SLOT.findall(template) if m in ("adj", "ing", "verb")]
    if len(slots) != 1:
        raise ValueError(f"template {template!r} must have exactly one motion slot, has {slots}")
    return slots[0]


def fill_template(template: str, shape_word: str, colour_word: str, motion_phrase: str) -> str:
    """``template`` with its slots filled ("a" becomes "an" before a vowel)."""
    text = _SLOT.sub(lambda m: {"colour": colour_word, "shape": shape_word}.get(m.group(1), motion_phrase), template)
    return re.sub(r"\ba (?=[aeiou])", "an ", text)


def make_caption(shape: str, colour: str, motion: str, rng: np.random.Generator, *, held_out: bool = False) -> str:
    """A caption of ``(shape, colour, motion)``: a random template (training or held-out) and synonyms."""
    templates = HELD_OUT_TEMPLATES if held_out else TRAIN_TEMPLATES
    template = templates[int(rng.integers(len(templates)))]
    pick = lambda words: words[int(rng.integers(len(words)))]  # noqa: E731
    return fill_template(template, pick(SHAPE_WORDS[shape]), pick(COLOUR_WORDS[colour]), pick(MOTION_WORDS[motion][motion_slot(template)]))


def read_captions_file(path: str | Path) -> list[tuple[str, tuple[str, str, str]]]:
    """``(caption, (shape, colour, motion))`` per non-empty line of ``path``; a caption the parser does not
    understand raises :class:`~motion4d.errors.DataError` naming the file, line and word."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the captions file ({e})") from None
    out = []
    for no, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        try:
            out.append((text, parse_caption(text)))
        except DataError as e:
            raise DataError(f"{path}:{no}: {e}") from None
    if not out:
        raise DataError(f"{path}: no captions (one caption per line)")
    return out
