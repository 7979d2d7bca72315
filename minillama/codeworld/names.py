"""Identifiers for world v4: names a model can only get right by reading them in the prompt.

World v3 drew 95 % of its names from a few per role (``nums``, ``s``, ``n``), so a model that
ignored the signature and wrote ``nums`` was right most of the time; the prior always beat
the prompt (``docs/codeworld_attempts.md``). World v4 draws most names from large pools, per
module, in many shapes: English words (``prices``, ``label``), compounds (``raw_scores``,
``user_id``), abbreviations (``lst``, ``cnt``), single letters, camelCase now and then, and
made-up words of several syllables (``tamrik``, ``shoblen``), which split into several tokens.
World v5 replaces half of those English names by *blends* (:func:`blend`): a known word's start
with another ending (``limistance``, ``chapstaing``), so that a name's later pieces can only be
copied, never completed from the prior.

Two pools are **held out** of training, for MiniEval's ``renamed`` tier (:mod:`.robustness`):

* :data:`HELDOUT_WORDS`, real English words that no training document contains (checked by
  ``tests/test_codeworld_robustness.py`` against the training stream and every template);
* made-up words whose hash falls in the held-out bucket (:func:`heldout_pseudo`): the training
  generator rejects them (:func:`is_heldout_name`), the tier draws only them.

Every draw takes an explicit ``random.Random``, so documents stay pure functions of their seed.
"""

from __future__ import annotations

import builtins
import hashlib
import keyword
import random
import re
from functools import lru_cache

# --- pools -----------------------------------------------------------------------------------
# Nouns that name a value (singular); lists take the plural. Everyday and programming words.
_NOUNS = """
account age amount angle answer apple area arg array attempt balance ball bank base batch bead bill
bit block board bone book bound box branch brick bucket budget bug cake call camera candle car card
cart case cell chain chair change channel chapter charge chart check chip city class click clock cloud
coin color column comment cost count counter country coupon course cup customer cycle date day deal
degree delay delta deposit depth desk device digit dish distance doc dollar dot draft drop edge egg
element email employee entry error event exam factor fee field file flag floor flower folder font
form frame fruit game gap gift goal grade graph group guess guest hand height hit hour house id image
index input item job key kid label lamp lane layer leaf lesson letter level limit line link list
load lock log loop mark match meal member message meter mile minute mode model month movie name node
note number object offer option order owner packet page pair paper part pass path pay peak pen
penny person phone photo piece pin pixel place plan plant plate player point pole pool post pot
prize price product profit project prompt queue quote race rank rate ray reading record region reply
report request result review reward ring road room root round row rule run sale sample score screen
seat second seed sensor share sheet shelf ship shoe shop side sign signal site size slot song sort
sound source space speed spot stack stage star start state station step stock stone store story
street string student style sum table tag task tax team term test text ticket tile time title token
tool total tower track trade train tree trip turn type unit user value vote wage wall watch wave
week weight wheel width window word worker year zone
actor album alarm alley alloy altar amber arch arena army arrow atlas attic aunt award axis badge bagel
bait bakery ballot band banner barn basket bath beam bean bear beard bell belt bench berry bike bin
bird blade blanket bloom boat body bolt bomb bond boot border bottle bowl brain bread bridge broom
brush bubble bulb bull bundle bus butter button cabin cable cage camp canal cap capital captain
carpet carrot cat cave chalk champion cheese chef cherry chest chicken circle clay cliff cloth
clown club coach coast coat code coffee collar comb corn corner cotton couch cousin cow crab crane
crew crown curtain cushion dance dancer deer den desert diamond diary dinner doctor dog doll door
dragon drawer dream dress drum duck dust eagle ear engine farm fence ferry field fig film finger
fire fish flute fog fork fox frog garden gate gear ghost giant glass glove goat gold grape grass
guitar hall hammer harp hat hawk heart hill hook horn horse hotel hut ink island jacket jam jar jelly
jewel juice king kitchen kite knife knot lake lamb lemon lens lid lion lizard loaf lunch
mango map market mask mat meadow_ medal melon mill mirror monkey moon moth motor mouse mouth mud mug
nail needle nest net nose nurse oak ocean olive onion orange oven owl pail paint palace pan panda
parade park party pasta peach pear pearl pencil piano pie pig pillar pipe pizza planet plum pocket
poem pond potato prince puzzle queen quiz rain rake raft rice river robot rock roof rope rose ruler
sack sail salad salt sand scale school scissors sea shadow shark sheep shell shirt shore silver
sink skirt sky sled snake snow soap sock soup spider spoon spring square squid stamp stairs steam
stick storm stove straw sugar suit sun swan sweater sword tail tank tea teacher tent thread throne
tiger toast toe tomato tongue tooth torch towel toy tractor trail tray truck tube tulip_ tuna
umbrella uncle van vase vest village violin wagon wallet wasp water whale whip wind wing wire wolf
wood wool yard yogurt zoo
""".replace("meadow_", "").replace("tulip_", "").split()
_ADJECTIVES = """
raw clean old new big small first last next prev input output sorted current total final base max
min main extra other some my all good bad new top low high short long local global daily hidden
temp user item new_ blue red green dark light quick slow hot cold full empty fresh late early odd even
fast safe wild plain sharp soft hard rich poor loud quiet busy lazy happy sad tiny huge warm cool
""".replace("new_", "").split()
_VERBS = """
add apply build check clean collect compute count draw fetch fill filter find fix fold format gather
group join keep load make merge mix move pack parse pick print push read remove render reset rotate
save scan score search send shift show sort split store strip sum swap take test trim turn update
walk wrap write zip
""".split()
_ABBREVIATIONS = ("lst", "arr", "seq", "vals", "cnt", "idx", "num", "nums", "xs", "ys", "val", "txt", "st",
                  "buf", "acc", "res", "ret", "tmp", "elems", "items", "data", "stuff", "args", "ints", "chars",
                  "strs", "msg", "src", "dst", "ref", "obj", "arg", "elt", "qty", "amt", "pct", "avg")
_LETTERS = tuple("abcdefghkmpqrstuvwxyz")

# The constant functions of the retrieval modules (documents.constant_function): `magic_number`
CONST_ADJ = ("default", "base", "max", "min", "start", "magic", "lucky", "initial", "retry", "page", "batch",
             "level", "answer", "offset", "target", "top", "bonus", "extra", "first", "final")
CONST_NOUN = ("limit", "size", "count", "value", "number", "code", "score", "width", "depth", "port", "rate",
              "seed", "total", "step", "age", "price", "year", "speed")
CONST_DOCS = ("Return the {w}.", "The {w} used by the other functions.", "How big the {w} is.",
              "Return the {w} as an int.")

# Held out of training (the `renamed` tier): real words no training text contains.
HELDOUT_WORDS = tuple("""
walrus pebble lantern harbor quilt meadow saddle tulip glacier falcon orchard velvet
thimble compass anchor barrel beacon biscuit blossom bramble cactus canyon cargo castle cedar
cobble comet copper coral cricket crystal dagger dune ember falconer feather fern fiddle
fossil galaxy garnet gazelle geyser goblet granite gravel hammock hazel heron hollow ivory jasper
juniper kayak kettle lagoon lilac lobster locket magnet mammoth maple marble meteor mitten mosaic
muffin nectar nutmeg oasis opal orbit otter paddle parrot pepper pigeon pillow pine pirate plume
pony poppy pretzel puddle pumpkin quartz rabbit raven reef ribbon saffron sapphire scarf seashell
shovel sparrow spruce squirrel summit swallow tadpole thistle thunder timber toffee topaz
trumpet tunnel turnip turtle valley vapor walnut whisker willow wizard yarn zebra
""".split())

# Made-up words: syllables of an onset, a vowel and sometimes a coda. World v3 used single-letter
# onsets only; v4 adds clusters, so made-up names are as varied as the tokens a tokenizer splits them into.
_ONSETS = tuple("bdfgklmnprstvz") + ("ch", "sh", "th", "br", "tr", "pl", "gr", "st", "kr", "bl", "dr", "fl",
                                      "sn", "sp", "w", "j", "h", "y", "qu")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ou", "ee", "oo")
_CODAS = ("n", "r", "l", "m", "k", "s", "t", "x", "p", "nd", "rk", "st", "ng", "sh")
HELDOUT_BUCKET = 8  # one made-up word in 8 is held out of training


def _bucket(word: str) -> int:
    return int(hashlib.sha256(("codeworld-names-v4:" + word).encode()).hexdigest()[:8], 16) % HELDOUT_BUCKET


def is_heldout_name(word: str) -> bool:
    """True for names the training stream never uses: :data:`HELDOUT_WORDS` and made-up words in
    the held-out hash bucket (a whole identifier, or any ``_``-separated part of one)."""
    parts = word.lower().split("_")
    return any(p in _HELDOUT_SET or _heldout_made_up(p) for p in parts)


def _heldout_made_up(word: str) -> bool:
    # not a piece of any word the world writes either: string steps cut words ("moon"[:3] == "moo")
    return word.isalpha() and _bucket(word) == 0 and not _V3_SHAPE.match(word) and word not in _known_pieces()


@lru_cache(maxsize=1)
def _known_pieces() -> frozenset[str]:
    return frozenset(w[a:b] for w in known_words() for a in range(len(w)) for b in range(a + 1, len(w) + 1))


@lru_cache(maxsize=1)
def known_words() -> frozenset[str]:
    """Every word the world's own texts use (stage phrases and templates, frames, input words,
    name pools), lower-cased: a made-up word that happens to be one of them is not held out."""
    from .chains import ALL_STAGES
    from .inputs import ARG_NAMES, ELEMENT_NAMES, INDEX_NAMES, WORDS
    from .phrasing import FRAMES, GENERIC_NAMES, NAME_PREFIXES
    texts = [w for s in ALL_STAGES for field in (s.nps, s.verbs, s.names, s.exprs, s.blocks, s.finals)
             for w in field] + [s.cond + s.val + s.init + s.update + s.var for s in ALL_STAGES]
    texts += [f for g in FRAMES.values() for fs in g.values() for f in fs] + list(WORDS) + list(GENERIC_NAMES)
    texts += list(NAME_PREFIXES) + list(CONST_ADJ) + list(CONST_NOUN) + list(CONST_DOCS) + list(INDEX_NAMES)
    texts += [n for names in (*ARG_NAMES.values(), *ELEMENT_NAMES.values()) for n in names]
    words = {w.lower() for t in texts for w in re.findall(r"[A-Za-z]+", t)}
    return frozenset(words) | _ALL_WORDS


# World v3's made-up words (inputs.pseudo_word: copy documents, v3's 5 % of names) have this shape;
# a held-out name never does, or v3's generator could write it in training.
_V3_SHAPE = re.compile(r"^([bdfgklmnprstvz][aeiou][bdfgklmnprstvz]?)+$")
HELDOUT_WORDS = tuple(w for w in HELDOUT_WORDS if not _V3_SHAPE.match(w))
_HELDOUT_SET = frozenset(HELDOUT_WORDS)


def _made_up(rng: random.Random, syllables: tuple[int, int]) -> str:
    out = ""
    for _ in range(rng.randint(*syllables)):
        out += rng.choice(_ONSETS) + rng.choice(_VOWELS) + (rng.choice(_CODAS) if rng.random() < 0.35 else "")
    return out


_RESERVED = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {"self", "cls", "check", "candidate"}


def _ok(word: str, taken) -> bool:
    return len(word) > 1 and word.isidentifier() and word not in _RESERVED and word not in taken


def made_up(rng: random.Random, taken=frozenset(), syllables: tuple[int, int] = (2, 3)) -> str:
    """A made-up training name (never one of the held-out bucket)."""
    while True:
        w = _made_up(rng, syllables)
        if _ok(w, taken) and not _heldout_made_up(w) and w not in _ALL_WORDS:
            return w


def heldout_pseudo(rng: random.Random, taken=frozenset(), syllables: tuple[int, int] = (2, 3)) -> str:
    """A made-up name of the held-out bucket: never in any training document."""
    while True:
        w = _made_up(rng, syllables)
        if _ok(w, taken) and _heldout_made_up(w):
            return w


def plural(noun: str) -> str:
    if noun.endswith(("s", "x", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in tuple("aeiou"):
        return noun[:-1] + "ies"
    return noun + "s"


_ALL_WORDS = frozenset(_NOUNS) | frozenset(plural(n) for n in _NOUNS) | frozenset(_ADJECTIVES) | \
    frozenset(_ABBREVIATIONS) | frozenset(_VERBS)

# The role of a name: what it holds. Lists and lists of words take plural nouns.
ROLE_OF_TYPE = {"list": "many", "words": "many", "str": "one", "int": "one", "bool": "one"}


def english(rng: random.Random, role: str) -> str:
    """An English identifier: a noun, or an adjective/noun compound, plural for collections."""
    noun = rng.choice(_NOUNS)
    if role == "many":
        noun = plural(noun)
    r = rng.random()
    if r < 0.5:
        return noun
    if r < 0.75:
        return f"{rng.choice(_ADJECTIVES)}_{noun}"
    if r < 0.9:
        other = rng.choice(_NOUNS)
        return f"{other}_{noun}" if other != noun else noun
    return f"{rng.choice(_VERBS)}_{noun}" if rng.random() < 0.5 else rng.choice(_ADJECTIVES)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


# Words a blend starts from: the world's own English words of four letters or more.
_BLEND_HEADS = tuple(w for w in sorted(set(_NOUNS) | set(_VERBS) | set(_ADJECTIVES)) if len(w) >= 4)


def blend(rng: random.Random, taken=frozenset()) -> str:
    """A word that starts like one the world knows and ends otherwise (world v5): the head of a
    known word cut after two letters or more, then the tail of another word or a made-up syllable
    (``comp`` + ``ass``, ``lan`` + ``ects``). A model that completes the familiar start from its
    prior (``compass`` -> ``compute``, the renamed tier's commonest failure) gets these wrong; only
    copying the rest of the name from the prompt gets them right."""
    while True:
        head = rng.choice(_BLEND_HEADS)
        word = head[:rng.randint(2, len(head) - 1)]
        if rng.random() < 0.5:
            other = rng.choice(_BLEND_HEADS)
            word += other[rng.randint(1, len(other) - 2):]
        else:
            word += _made_up(rng, (1, 1))
        if (len(word) >= 4 and _ok(word, taken) and word not in known_words()  # known_words() holds the pools
                and not is_heldout_name(word) and not _V3_SHAPE.match(word)):
            return word


def _blend_name(rng: random.Random, taken) -> str:
    name = blend(rng, taken)
    if rng.random() < 0.15:
        name = f"{name}_{rng.choice(_NOUNS)}" if rng.random() < 0.5 else f"{rng.choice(_ADJECTIVES)}_{name}"
    return name


def wild_name(rng: random.Random, role: str, taken=frozenset(), blends: float = 0.0, beside: bool = False) -> str:
    """One name of world v4's open pools (never a held-out one). ``blends``: the share of the
    English names (world v5) or, with ``beside``, of the made-up names (world v6) replaced by
    :func:`blend` words."""
    for _ in range(1000):
        r = rng.random()
        if r < 0.40 and blends and not beside and rng.random() < blends:
            name = _blend_name(rng, taken)
        elif r < 0.40:
            name = english(rng, role)
        elif r < 0.75 and blends and beside and rng.random() < blends:
            name = _blend_name(rng, taken)
        elif r < 0.75:
            name = made_up(rng, taken, (1, 3))
            if rng.random() < 0.15:
                name = f"{name}_{made_up(rng, taken, (1, 2))}"
        elif r < 0.90:
            name = rng.choice(_ABBREVIATIONS)
        else:
            name = rng.choice(_LETTERS)
        if rng.random() < 0.05 and "_" in name:
            name = camel(name)
        if _ok(name, taken) and not is_heldout_name(name):
            return name
    raise RuntimeError("no free name")


def heldout_name(rng: random.Random, taken=frozenset()) -> str:
    """A name for the ``renamed`` tier: a held-out English word or a held-out made-up word
    (sometimes joined by ``_``, so multi-piece names are tested too)."""
    while True:
        r = rng.random()
        if r < 0.45:
            name = rng.choice(HELDOUT_WORDS)
        elif r < 0.85:
            name = heldout_pseudo(rng, taken)
        else:
            name = f"{rng.choice(HELDOUT_WORDS)}_{heldout_pseudo(rng, taken, (1, 2))}"
        if _ok(name, taken):
            return name
