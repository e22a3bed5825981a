"""Reading a free-form instruction: which task, which class, which answer colours.

Every sentence our templates produce is recognised exactly (the templates are turned into
patterns). Other wording goes through simple rules: task words ("segment", "detect", "depth",
two colour names with a condition, ...) and a noun phrase after the task word, singularised
("detect all dogs" -> "dog"). When no task can be told, the result says why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from tasks.colors import NAMED_COLORS, canonical_color, color_key, color_pattern, known_colors
from tasks.templates import NEGATIVE, POSITIVE, literal_length, normalise, template_pattern


@dataclass(frozen=True)
class ParsedInstruction:
    """What an instruction asks for; ``task`` is None when it cannot be told (see ``reason``)."""

    task: str | None
    class_name: str | None = None
    positive: str | None = None
    negative: str | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.task is not None


_COLOR_RE = color_pattern()
# what a template's colour slot may hold: one or two words, checked against the known colours
_ANY_COLOR = r"[a-z]+(?:[\s\-][a-z]+)?"
_COLOR_KEYS = {color_key(n) for n in NAMED_COLORS}


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[str, re.Pattern[str], int]]:
    from tasks import TASKS  # the registry imports this module: import lazily

    out = []
    seen = set()
    for tag, module in TASKS.items():
        for style in ("fixed", "rephrased"):
            for template in module.TEMPLATES[style]:
                if (tag, template) in seen:
                    continue
                seen.add((tag, template))
                pattern = template_pattern(template)
                # colours: any one- or two-word name; unknown ones are reported, not guessed
                src = pattern.pattern.replace(r"(?P<pos>[a-z]+)", f"(?P<pos>{_ANY_COLOR})")
                src = src.replace(r"(?P<neg>[a-z]+)", f"(?P<neg>{_ANY_COLOR})")
                out.append((tag, re.compile(src), literal_length(template)))
    return out


# ------------------------------------------------------------------------------- class phrases

_LEADING = {
    "the", "a", "an", "all", "every", "each", "any", "some", "of", "for", "me", "us", "out", "around",
    "round", "on", "over", "its", "their", "these", "those", "this", "that", "visible", "pixels",
    "instances", "instance", "objects", "object", "regions", "region", "areas", "area", "mask", "masks",
    "boxes", "box", "bounding", "rectangles", "rectangle", "frame", "one", "ones", "single", "where",
    "is", "are", "there", "please", "kindly", "also", "just", "only", "them", "to", "find", "locate",
    "no", "not", "least", "at",
}
_STOP = {
    "in", "on", "at", "from", "within", "inside", "of", "with", "and", "or", "using", "as", "by", "to",
    "into", "onto", "here", "there", "please", "if", "that", "which", "who", "you", "can", "could",
    "is", "are", "be", "then", "so", "white", "black", "blue", "now", "for", "this", "these", "those",
    "it", "them", "otherwise", "else", "when", "while", "where", "visible", "present",
    "appear", "appears", "found", "shown",
}
_IRREGULAR = {
    "people": "person", "men": "man", "women": "woman", "children": "child", "mice": "mouse",
    "geese": "goose", "teeth": "tooth", "feet": "foot", "knives": "knife", "leaves": "leaf",
    "shelves": "shelf", "wolves": "wolf", "loaves": "loaf", "halves": "half", "calves": "calf",
    "buses": "bus", "sheep": "sheep", "deer": "deer", "fish": "fish", "series": "series", "species": "species",
}
# words that end in s but are not plurals we should cut (COCO's "skis" and "scissors" among them)
_KEEP_S = {"scissors", "skis", "glasses", "pants", "jeans", "shorts", "trousers", "clothes", "bus",
           "grass", "glass", "cactus", "octopus", "hippopotamus", "lens", "news", "tennis", "gas",
           "canvas", "chaos", "iris", "dress", "mattress", "compass", "ibis", "walrus", "binoculars",
           "headphones", "stairs", "stadium", "blinds", "drapes", "curtains"}


def singular(word: str) -> str:
    """A plural English noun made singular ("dogs" -> "dog", "boxes" -> "box", "skis" stays)."""
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if w in _KEEP_S or len(w) <= 3 or not w.endswith("s") or w.endswith(("ss", "us", "is")):
        return word
    if w.endswith("ies") and len(w) > 4:
        return word[:-3] + "y"
    if w.endswith(("ches", "shes", "xes", "zes", "sses", "oes")):
        return word[:-2]
    return word[:-1]


def _noun_phrase(words: list[str]) -> str | None:
    i = 0
    while i < len(words) and words[i] in _LEADING:
        i += 1
    out: list[str] = []
    for w in words[i:]:
        if w in _STOP or not re.fullmatch(r"[a-z][a-z'\-]*", w):
            break
        out.append(w)
        if len(out) == 4:
            break
    if not out:
        return None
    out[-1] = singular(out[-1])
    return " ".join(out)


def _match_vocabulary(phrase: str | None, text: str, classes: Iterable[str] | None) -> str | None:
    if classes is None:
        return phrase
    vocab = {c.lower(): c for c in classes}
    if phrase and phrase in vocab:
        return vocab[phrase]
    # the longest class name written in the text, singular or plural
    words = text.split()
    sing = " ".join(singular(w) for w in words)
    best = None
    for low, name in vocab.items():
        pat = r"\b" + re.escape(low) + r"\b"
        if re.search(pat, text) or re.search(pat, sing):
            if best is None or len(low) > len(best[0]):
                best = (low, name)
    return best[1] if best else phrase


# ------------------------------------------------------------------------------------ free text

_DEPTH = re.compile(r"\b(depth|depths|how (?:far|near|close|distant)|far away|distances?|near and far|"
                    r"nearer|farther|further away|closeness|3d structure|range map)\b")
_SEG = re.compile(r"\b(segment|segments|segmentation|segmenting|mask|masks|masking|silhouette|"
                  r"cut out|in white|white and|black and white|pixels of|pixel by pixel|pixels belonging)\b")
_DET = re.compile(r"\b(detect|detects|detection|detecting|bounding box|bounding boxes|box|boxes|rectangle|"
                  r"rectangles|locate|localise|localize|localisation|localization)\b")
_SEG_WEAK = re.compile(r"\b(white|isolate|separate|outline the area|region of)\b")
_DET_WEAK = re.compile(r"\b(find|spot|where is|where are|where's|mark|frame|circle|point out)\b")
_CONDITION = re.compile(r"\b(if|whether|when|otherwise|else|yes|no|present|absent|contains?|unless)\b")
_NEG_CUE = re.compile(r"\b(otherwise|else|if not|if no|if there is no|if there are no|if it does not|"
                      r"if it doesn't|if you cannot|if you can't|if absent|for no|when not|not present|absent)\b")
_YES_NO = re.compile(r"\b(?:(?P<c1>" + _COLOR_RE + r")\s+(?:for|means|=|if)\s+(?P<w1>yes|no|present|absent)|"
                     r"(?P<w2>yes|no|present|absent)\s*(?:->|=|:|means|is|gets)?\s*(?P<c2>" + _COLOR_RE + r"))\b")
_PHRASE = r"(?P<cls>[a-z][a-z'\-]*(?: [a-z][a-z'\-]*){0,7})"
# the phrase is captured inside a look-ahead so that the matches can overlap
_CLS_CLASS = re.compile(r"\b(?:contains?|containing|shows?|showing|has|have|includes?|including|see|find|"
                        r"any|with|of)\s+(?=" + _PHRASE + ")")
_CLS_THERE = re.compile(r"\b(?:is there|are there|there is|there are|there's)\s+(?=" + _PHRASE + ")")
_TASK_VERB = {
    "det": re.compile(r"\b(?:detect|detection of|locate|localise|localize|find|spot|mark|frame|box|boxes|"
                      r"around|where is|where are|where's)\b"),
    "seg": re.compile(r"\b(?:segment|segmentation of|mask of|mask for|mask|masks|isolate|separate|"
                      r"cut out|pixels of|show|paint|colour|color|turn|make|find|highlight)\b"),
}
_NEGATED = re.compile(r"\b(no|not|without|isn't|aren't|doesn't|don't|cannot|can't|none)\b")


# "dog in the park" -> "dog": a preposition followed by a determiner ends a class name ("chest of
# drawers" has none and stays whole)
_TRAILING_PLACE = re.compile(r"\s+(?:in|on|at|from|within|inside|near|under|behind|of|by|next to)\s+"
                             r"(?:the|this|that|these|those|a|an|my|your|our|his|her|its|their)\b.*$")


def _colors_in(text: str) -> list[tuple[int, str]]:
    found = [(m.start(), m.group(0)) for m in re.finditer(r"\b" + _COLOR_RE + r"\b", text)]
    return [(i, canonical_color(c)) for i, c in found]


def _unknown_colour(name: str) -> str:
    return f"unknown colour {name.strip()!r}; known colours: {known_colors()}"


# "show X", "answer X", "fill it with X", "respond with X" ...: X is meant as an answer colour
_ANSWER_WORD = re.compile(r"\b(?:show|display|answer|output|respond with|fill (?:it|the image|the picture) with|"
                          r"paint (?:it|the image|the picture|everything)|turn (?:it|the image)|make (?:it|the image))"
                          r"\s+([a-z]+)\b")
_NOT_COLOUR = {"a", "an", "the", "me", "it", "this", "that", "if", "whether", "where", "what", "which", "how",
               "one", "yes", "no", "for", "with", "all", "any", "every", "each", "image", "picture", "photo",
               "depth", "mask", "masks", "box", "boxes", "its", "them", "us", "something", "nothing"}


def _unknown_answer_colour(text: str) -> str | None:
    """A word written where an answer colour belongs that is not a known colour ("show chartreuse if")."""
    for m in _ANSWER_WORD.finditer(text):
        word = m.group(1)
        if word not in _NOT_COLOUR and color_key(word) not in _COLOR_KEYS and not re.match(_COLOR_RE, text[m.start(1):]):
            return word
    return None


def _parse_cls(text: str, colours: list[tuple[int, str]], classes) -> ParsedInstruction:
    names = []
    for _, c in colours:
        if c not in names:
            names.append(c)
    positive = negative = None
    yes_no = {}
    for m in _YES_NO.finditer(text):
        colour = m.group("c1") or m.group("c2")
        word = m.group("w1") or m.group("w2")
        yes_no[word in ("yes", "present")] = canonical_color(colour)
    if True in yes_no and False in yes_no:
        positive, negative = yes_no[True], yes_no[False]
    else:
        split = re.search(r"\b(otherwise|else|if not|or else)\b", text)
        if split:
            before = [c for i, c in colours if i < split.start()]
            after = [c for i, c in colours if i > split.start()]
            if before and after:
                positive, negative = before[0], after[0]
                condition = text[: split.start()]
                if _NEGATED.search(condition.split(" if ", 1)[-1]) and " if " in f" {condition}":
                    positive, negative = negative, positive
        if positive is None:
            positive, negative = names[0], names[1]
            cue = _NEG_CUE.search(text)
            if cue and colours[0][0] > cue.start():
                positive, negative = negative, positive
    phrase = None
    # prefer "there is a X" wording, then any other cue ("contains X", "any X", ...)
    for pattern in (_CLS_THERE, _CLS_CLASS):
        for match in pattern.finditer(text):
            phrase = _noun_phrase(match.group("cls").split())
            if phrase and color_key(phrase) not in _COLOR_KEYS:
                break
            phrase = None
        if phrase:
            break
    phrase = _match_vocabulary(phrase, text, classes)
    if positive == negative:
        return ParsedInstruction("cls", phrase, None, None, "classification needs two different colours")
    reason = "free-form classification instruction" if phrase else "classification instruction without a class"
    return ParsedInstruction("cls", phrase, positive, negative, reason)


def _class_after_verb(task: str, text: str, classes) -> str | None:
    phrase = None
    for m in _TASK_VERB[task].finditer(text):
        phrase = _noun_phrase(text[m.end():].replace(",", " , ").replace("?", " ? ").split())
        if phrase:
            break
    return _match_vocabulary(phrase, text, classes)


def parse_instruction(text: str, classes: Iterable[str] | None = None) -> ParsedInstruction:
    """Task, class and colours of an instruction; ``classes`` (optional) is the known class list.

    >>> parse_instruction("please segment the cat")
    ParsedInstruction(task='seg', class_name='cat', positive=None, negative=None, reason='free-form segmentation instruction')
    """
    norm = normalise(text or "")
    if not norm:
        return ParsedInstruction(None, reason="empty instruction")
    if POSITIVE in norm or NEGATIVE in norm or "%" in norm:
        return ParsedInstruction(None, reason="the instruction still has template placeholders (% * #)")

    best = None
    for tag, pattern, weight in _patterns():
        m = pattern.match(norm)
        if m and (best is None or weight > best[2]):
            best = (tag, m, weight)
    if best is not None:
        tag, m, _ = best
        groups = m.groupdict()
        cls = groups.get("cls")
        if cls is not None:
            cls = cls.strip()
            if classes is None or cls not in {c.lower() for c in classes}:
                cls = _TRAILING_PLACE.sub("", cls) or cls
            cls = _match_vocabulary(cls, norm, classes) if classes is not None else cls
        pos, neg = groups.get("pos"), groups.get("neg")
        unknown = [c for c in (pos, neg) if c is not None and color_key(c) not in _COLOR_KEYS]
        if unknown:
            return ParsedInstruction(tag, cls, None, None, _unknown_colour(unknown[0]))
        pos = None if pos is None else canonical_color(pos)
        neg = None if neg is None else canonical_color(neg)
        if pos is not None and pos == neg:
            return ParsedInstruction(tag, cls, None, None, "classification needs two different colours")
        return ParsedInstruction(tag, cls, pos, neg, "matches a template")

    colours = _colors_in(norm)
    if len({c for _, c in colours}) >= 2 and _CONDITION.search(norm):
        return _parse_cls(norm, colours, classes)
    if _DEPTH.search(norm):
        return ParsedInstruction("depes", None, None, None, "free-form depth instruction")
    # the strong words of a task first ("mask" beats "find"), then the weak ones
    for tag, pattern in (("seg", _SEG), ("det", _DET), ("seg", _SEG_WEAK), ("det", _DET_WEAK)):
        if pattern.search(norm):
            cls = _class_after_verb(tag, norm, classes)
            what = "segmentation" if tag == "seg" else "detection"
            return ParsedInstruction(tag, cls, None, None,
                                     f"free-form {what} instruction" if cls else f"{what}, but no class found")
    unknown = _unknown_answer_colour(norm)
    if unknown and _CONDITION.search(norm):
        return ParsedInstruction("cls", None, None, None, _unknown_colour(unknown))
    if len({c for _, c in colours}) == 1 and _CONDITION.search(norm):
        return ParsedInstruction(None, reason="cannot tell: a classification instruction needs two colours "
                                              "(one for present, one for absent)")
    return ParsedInstruction(None, reason="cannot tell the task: no detection, segmentation, classification "
                                          "(two colours and a condition) or depth wording")
