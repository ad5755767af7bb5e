"""The class vocabulary of SpiderBench v2: every class a task can use, named by source, and the zoo's own classes.

A class is a ``ClassRef(source, label, variant)``. Its *key* (``source:label``; glyphs are keyed by the character
alone, whatever the font) says which classes are the same; its *source key* (``source/variant``) says where its
examples come from (for glyphs, the font group). ``tasks.py`` builds targets and training tasks from these lists;
``tests/test_spiderbench_v2.py`` checks, from the definitions alone, that

* no class key (nor a look-alike glyph, ``LOOKALIKES``) is shared by two of: the zoo's fine-tuning data, the
  selector's training tasks, the targets;
* no target source key is used by the zoo or by a training task.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import data as image_data
from ..text import data as text_data


@dataclass(frozen=True)
class ClassRef:
    source: str  # "glyphs" | "fashion-mnist" | "skimage" | "shapes" | "digits" | "animal-mnist" | text sources
    label: str  # a character, class id, image name, section, locale, ...
    variant: str = ""  # font group for glyphs; "" elsewhere

    @property
    def key(self) -> str:
        """What makes two classes the same class (a glyph is its character in any font)."""
        return f"{self.source}:{self.label}"

    @property
    def source_key(self) -> str:
        """Where the examples come from (a glyph's font group is part of its source)."""
        return f"{self.source}/{self.variant}" if self.variant else self.source


def refs(source: str, labels, variant: str = "") -> tuple[ClassRef, ...]:
    return tuple(ClassRef(source, str(label), variant) for label in labels)


# --- the zoo's own fine-tuning data (benchmarks/spiderbench/build_zoo.py, text/build_zoo.py) -----------------------

ZOO_CLASSES = {
    "image": refs("fashion-mnist", image_data.FASHION_TRAIN) + refs("glyphs", image_data.GLYPH_TRAIN_CHARS, "dejavu")
    + refs("skimage", image_data.TEXTURE_TRAIN),
    "text": refs("bbc", text_data.BBC_SOURCE) + refs("faker-name", text_data.NAME_SOURCE)
    + refs("faker-address", text_data.NAME_SOURCE) + refs("faker-field", text_data.FIELD_SOURCE),
}

# --- image classes -----------------------------------------------------------------------------------------------

# Glyphs that look like another class's glyph count as that class: the zoo is tuned on upper-case Latin (DejaVu),
# so Latin lower case that is a scaled capital (c o s u v w x z), l (≈ I), digits 0 and 1 (≈ O, I), and the Greek
# and Cyrillic capitals and small letters drawn like Latin letters are left out of every other role.
LOOKALIKES = {
    **{c: c.upper() for c in "coksuvwxzpy"}, "l": "I", "0": "O", "1": "I",
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧ", "ABEZHIKMNOPTYX")), **dict(zip("οκινυτχρ", "oKiVUTXp")),
    **dict(zip("АВЕКМНОРСТУХ", "ABEKMHOPCTYX")), **dict(zip("авекмнорстух", "abeKMHopcTyx")),
    "ו": "I", "ן": "I", "∈": "E",
}
LATIN_LOWER = "abdefghijmnqrt"  # a–t without the look-alikes above
LATIN_DIGITS = "23456789"
GREEK = "ΓΔΘΛΞΠΣΦΨΩ" + "αβγδεζηθλμξπσφψω"
CYRILLIC = "БГДЖЗИЙЛПФЦЧШЩЪЫЬЭЮЯ" + "бгджзийлпфцчшщъыьэюя"
HEBREW = "אבגדהזחטיכלמנסעפצקרשת"
SYMBOLS = "←→↑↓↔∑∏∫√∞≈≠≤≥±÷∂∇∩∪⊂⊕♠♣♥♦★☆●■▲◆"
# Target-side scripts: ten letters each, in the script's Noto fonts (+ Lohit for Devanagari). Ethiopic (ሀ ≈ U, ዐ ≈ O)
# and Tamil (ட ≈ L, ப ≈ U) were dropped for look-alikes of the zoo's capitals; the screen is by eye, not exhaustive.
SCRIPTS = {
    "devanagari-a": "कखगघचछजझटठ", "devanagari-b": "डढतथदधनपफब",
    "georgian-a": "აბგდევზთიკ", "georgian-b": "ლმნოპჟრსტუ",
    "armenian-a": "ԱԲԳԴԵԶԷԸԹԺ", "armenian-b": "ԻԼԽԾԿՀՁՂՃՄ",
    "thai-a": "กขคงจฉชซฌญ", "thai-b": "ดตถทธนบปผฝ",
    "malayalam": "കഖഗഘങചഛജഝഞ", "sinhala": "කඛගඝඞචඡජඣඤ", "lao": "ກຂຄງຈຊຍດຕຖ",
    "bengali": "কখগঘঙচছজঝঞ", "kannada": "ಕಖಗಘಙಚಛಜಝಞ",
    "gurmukhi": "ਕਖਗਘਙਚਛਜਝਞ", "khmer": "កខគឃងចឆជឈញ", "gujarati": "કખગઘઙચછજઝઞ", "telugu": "కఖగఘఙచఛజఝఞ",
}
FASHION_TRAINING = [5, 7, 8, 9]  # the zoo's fine-tuning used 0,1,2,3,4,6 (train file); these are training-task classes
SKIMAGE_TRAINING = image_data.TEXTURE_TARGET  # colour photos (v1's targets) move to the training side
SHAPES = ["circle", "square", "triangle", "star", "cross", "hexagon", "ring", "diamond"]
ANIMAL_MNIST = [str(i) for i in range(10)]  # the package names Bear ... Zebra, but not which id is which
DIGITS = [str(i) for i in range(10)]

# Font groups: glyph sources. The zoo renders in DejaVu; training tasks in FreeFont + URW base35; each target
# group below is used by targets only.
TRAINING_FONTS = "free-urw"
TARGET_FONT_GROUPS = ["liberation", "crosextra", "humanist", "rounded", "handwriting", "noto"]

# --- text classes ------------------------------------------------------------------------------------------------

TRAINING_LOCALES = ["sv_SE", "da_DK", "fi_FI", "no_NO", "cs_CZ", "hu_HU", "ro_RO", "hr_HR", "sk_SK"]
TRAINING_FIELDS = ["city", "country", "color_name", "catch_phrase", "bs"]
# (not idlelib: importing idlelib.idle starts IDLE)
TRAINING_DOCSTRINGS = ["asyncio", "email", "unittest", "logging", "http", "xml", "multiprocessing", "importlib",
                       "inspect", "collections", "turtle", "decimal", "urllib", "tkinter", "typing"]  # ≥ 78 each
TRAINING_BBC = text_data.BBC_TARGET  # sports, tech: v1 targets, now training classes
