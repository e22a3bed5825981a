"""Instruction templates, their deterministic filling, the answer colours and the instruction parser."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

import tasks
from tasks import classification, depth, detection, parse_instruction, segmentation
from tasks.colors import COLORS, FIXED_COLORS, NAMED_COLORS, choose_colors, palette_distance_min
from tasks.templates import fill_template

PLACEHOLDERS = {"det": {"%"}, "seg": {"%"}, "cls": {"%", "*", "#"}, "depes": set()}
CANONICAL = {
    "det": "Detect the %.",
    "seg": "Segment the %.",
    "cls": "Show * if there is a % in the picture, otherwise show #.",
    "depes": "Estimate the depth of this image.",
}
CLASS_NAMES = ["dog", "traffic light", "pool table", "hair drier", "sports ball", "skis", "chest of drawers",
               "russian blue", "person"]
COLOUR_PAIRS = [("red", "green"), ("cyan", "magenta"), ("yellow", "blue"), ("green", "red")]


def test_registry_and_aliases():
    assert set(tasks.TASKS) == {"det", "seg", "cls", "depes"}
    assert tasks.get_task("det") is detection and tasks.get_task("depth") is depth
    assert tasks.get_task("Segmentation") is segmentation and tasks.get_task("cls") is classification
    with pytest.raises(ValueError, match="unknown task"):
        tasks.get_task("painting")
    for tag, module in tasks.TASKS.items():
        assert module.TAG == tag
        for name in ("TEMPLATES", "make_instruction", "encode", "decode", "new_metric"):
            assert hasattr(module, name), (tag, name)
        assert hasattr(tasks.new_metric(tag, "coco"), "add_answer")


@pytest.mark.parametrize("tag", list(tasks.TASKS))
def test_templates_are_clean_sentences(tag):
    module = tasks.get_task(tag)
    assert module.TEMPLATES["fixed"] == [CANONICAL[tag]]
    rephrased = module.TEMPLATES["rephrased"]
    assert 20 <= len(rephrased) <= 40
    assert len(set(rephrased)) == len(rephrased)
    for t in rephrased + module.TEMPLATES["fixed"]:
        marks = {m for m in "%*#" if m in t}
        assert marks == PLACEHOLDERS[tag], t
        assert all(t.count(m) == 1 for m in marks), t
        assert re.fullmatch(r"[A-Z][A-Za-z0-9%*#,;:'?. -]*[.?]", t), t  # capital first, full stop or '?' last
        assert "  " not in t and " ." not in t and " ," not in t, t
        # no pluralising hacks or articles that break with some class names ("a apple", "%s")
        assert "%s" not in t and "a %" not in t.replace("a % in the picture", ""), t
        assert not re.search(r"\b(each|every) %", t), t  # "every scissors" reads wrong


@pytest.mark.parametrize("tag", list(tasks.TASKS))
def test_make_instruction_is_deterministic_and_varied(tag):
    module = tasks.get_task(tag)
    kw = {"class_name": "traffic light"}
    first = [module.make_instruction(f"coco_{i:06d}_{tag}", 0, **kw) for i in range(200)]
    assert first == [module.make_instruction(f"coco_{i:06d}_{tag}", 0, **kw) for i in range(200)]
    assert len(set(first)) >= 15  # the keys spread over the templates
    assert first != [module.make_instruction(f"coco_{i:06d}_{tag}", 1, **kw) for i in range(200)]
    fixed = module.make_instruction("anything", 3, "fixed", **kw)
    expected = fill_template(CANONICAL[tag], "traffic light", *FIXED_COLORS)
    assert fixed == expected
    assert "%" not in first[0] and "*" not in first[0] and "#" not in first[0]
    if tag != "depes":
        with pytest.raises(ValueError, match="class_name"):
            module.make_instruction("k", 0)
    with pytest.raises(ValueError, match="style"):
        module.make_instruction("k", 0, "poetic", **kw)


def test_make_instruction_does_not_depend_on_python_hash_seed(repo_root):
    code = ("from tasks import classification as c, detection as d;"
            "print(d.make_instruction('coco_1_det_dog', 5, class_name='dog'), c.make_instruction('k9', 2, class_name='cat'))")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=repo_root,
                           env={"PYTHONHASHSEED": seed, "PATH": ""}, check=True).stdout for seed in ("1", "2")}
    assert len(outs) == 1


def test_colours_are_well_separated_and_chosen_deterministically():
    # the released model's 16 colours (AlaaLab/InstructCV format_dataset_rp.py), DESIGN.md section 5
    assert COLORS == {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "purple": (128, 0, 128),
                      "white": (255, 255, 255), "Brown": (165, 42, 42), "Gold": (255, 215, 0),
                      "Beige": (245, 245, 220), "Violet": (238, 130, 238), "Orange": (255, 128, 0),
                      "Maroon": (128, 0, 0), "Indigo": (75, 0, 130), "Aqua": (0, 255, 255), "Coral": (255, 127, 80),
                      "RosyBrown": (188, 143, 143), "Peru": (205, 133, 63)}
    assert palette_distance_min() > 30  # Beige and white are the closest pair
    assert set(COLORS) <= set(NAMED_COLORS)
    assert choose_colors("x", 0, "fixed") == ("red", "green")
    pairs = [choose_colors(f"pets_{i}_cls_cat", 0) for i in range(3000)]  # 240 ordered pairs
    assert pairs == [choose_colors(f"pets_{i}_cls_cat", 0) for i in range(3000)]
    assert all(p != n and p in COLORS and n in COLORS for p, n in pairs)
    assert len(set(pairs)) == len(COLORS) * (len(COLORS) - 1)  # every ordered pair is used
    inst = classification.make_instruction("pets_7_cls_cat", 0, class_name="cat")
    positive, negative = choose_colors("pets_7_cls_cat", 0)
    assert positive in inst and negative in inst


# ------------------------------------------------------------------------------------ parser


@pytest.mark.parametrize("tag", list(tasks.TASKS))
def test_every_template_parses_back(tag):
    module = tasks.get_task(tag)
    for template in module.TEMPLATES["rephrased"] + module.TEMPLATES["fixed"]:
        for name in CLASS_NAMES:
            for positive, negative in COLOUR_PAIRS:
                text = fill_template(template, name, positive, negative)
                parsed = parse_instruction(text)
                want = (tag, name if "%" in template else None, positive if "*" in template else None,
                        negative if "#" in template else None)
                assert (parsed.task, parsed.class_name, parsed.positive, parsed.negative) == want, (text, parsed)
                assert parsed.ok


@pytest.mark.parametrize("text, task, cls, positive, negative", [
    ("please segment the cat", "seg", "cat", None, None),
    ("detect all dogs", "det", "dog", None, None),
    ("Detect all the buses in this photo!", "det", "bus", None, None),
    ("where are the traffic lights in this picture?", "det", "traffic light", None, None),
    ("Draw a box around every person", "det", "person", None, None),
    ("show blue if there is a car, otherwise show yellow", "cls", "car", "blue", "yellow"),
    ("Show green if there is no cat, otherwise red", "cls", "cat", "red", "green"),
    ("Is there a horse? Answer magenta for yes and cyan for no.", "cls", "horse", "magenta", "cyan"),
    ("Paint the image yellow if you see any zebras or red if not", "cls", "zebra", "yellow", "red"),
    ("how far away is everything?", "depes", None, None, None),
    ("Estimate the depth of this image.", "depes", None, None, None),
    ("Detect the dog in the park.", "det", "dog", None, None),
    ("find the cat and paint it white", "seg", "cat", None, None),
])
def test_free_text(text, task, cls, positive, negative):
    parsed = parse_instruction(text)
    assert (parsed.task, parsed.class_name, parsed.positive, parsed.negative) == (task, cls, positive, negative)
    assert parsed.reason


def test_palette_names_in_any_case_and_spacing_and_unknown_colours():
    for text in ("Show Aqua if there is a cat in the picture, otherwise show rosy brown.",
                 "show aqua if there is a cat in the picture, otherwise show Rosy-Brown.",
                 "SHOW AQUA IF THERE IS A CAT IN THE PICTURE, OTHERWISE SHOW ROSYBROWN."):
        parsed = parse_instruction(text)
        assert (parsed.task, parsed.class_name, parsed.positive, parsed.negative) == ("cls", "cat", "Aqua", "RosyBrown")
    parsed = parse_instruction("Is there a dog? Answer gray for yes and pink for no.")
    assert (parsed.positive, parsed.negative) == ("grey", "pink")
    for text in ("Show chartreuse if there is a cat in the picture, otherwise show green.",
                 "show chartreuse if there is a cat, otherwise green"):
        parsed = parse_instruction(text)
        assert parsed.positive is None and len(parsed.reason.splitlines()) == 1
        assert "unknown colour 'chartreuse'" in parsed.reason and "RosyBrown" in parsed.reason


def test_cannot_tell_says_why():
    for text in ("make it look like a painting", "", "   ", "show red", "Show * if there is a %, otherwise #."):
        parsed = parse_instruction(text)
        assert not parsed.ok and parsed.task is None
        assert parsed.reason and len(parsed.reason.splitlines()) == 1
    assert "task" in parse_instruction("make it look like a painting").reason
    assert "two colours" in parse_instruction("show red if there is a cat").reason


def test_class_vocabulary():
    parsed = parse_instruction("Find the chest of drawers, please", classes=["chest of drawers", "chair"])
    assert (parsed.task, parsed.class_name) == ("det", "chest of drawers")
    parsed = parse_instruction("segment the Traffic Lights", classes=["person", "traffic light"])
    assert parsed.class_name == "traffic light"
