"""evaluate.py and evaluation/: perfect answers, missing answers, absent classes, protocols, --ckpt with a tiny model.

One synthetic evaluation pairs folder (dataset_creation/synthetic.py + format_dataset, every eval
dataset) is built per module; answers are written the way a model would return them: the targets
themselves, enlarged 2x, JPEG-compressed and shrunk back.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("coco", "ade20k", "pets", "nyuv2", "voc", "sunrgbd")
EXPECTED_KEYS = {
    "det": {"mAP", "AP50", "AP75", "n", "queries"},  # queries: which (image, class) pairs were asked
    "seg": {"mIoU", "pixel_acc", "n", "queries"},
    "depes": {"rmse", "abs_rel", "log10", "delta1", "delta2", "delta3", "n"},
}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / "evaluate.py"), *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)  # fmt: skip


def rows_of(pairs: Path) -> list[dict]:
    with open(pairs / "metadata.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def degrade(image: Image.Image, quality: int = 90) -> Image.Image:
    """What a model's answer goes through: made at a larger size, JPEG-compressed, shrunk to the input size."""
    big = image.convert("RGB").resize((image.width * 2, image.height * 2), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=quality)
    small = cv2.resize(np.asarray(Image.open(buf).convert("RGB")), image.size, interpolation=cv2.INTER_AREA)
    return Image.fromarray(small)


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    from dataset_creation.synthetic import write_all

    root = tmp_path_factory.mktemp("eval_raw")
    write_all(root, DATASETS, num_train=0, num_eval=6, size=256, seed=0, progress=False)
    return root


@pytest.fixture(scope="module")
def pairs(raw, tmp_path_factory) -> Path:
    from dataset_creation.format_dataset import build

    out = tmp_path_factory.mktemp("eval_pairs") / "pairs"
    for name in DATASETS:
        # pets: every breed asked of every image, so that cls is scored as top-1 accuracy
        build(out, [raw / name], dataset=name, split="eval", neg_per_image=-1 if name == "pets" else 1,
              progress=False)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def perfect(pairs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("perfect")
    for row in rows_of(pairs):
        target = Image.open(pairs / row["sample"] / f"{row['stem']}_1.png")
        degrade(target).save(out / f"{row['sample']}.png")
    return out


def test_perfect_answers_give_the_round_trip_figures(pairs, perfect, tmp_path):
    out = tmp_path / "metrics.json"
    r = run_cli("--pairs", str(pairs), "--predictions", str(perfect), "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    metrics = json.loads(out.read_text())
    rows = rows_of(pairs)
    expected = {(row["task"], row["dataset"]) for row in rows}
    assert {(t, d) for t in metrics for d in metrics[t]} == expected
    for task, per in metrics.items():
        for dataset, values in per.items():
            if task == "cls":
                assert set(values) in ({"accuracy", "n", "queries"}, {"verification_accuracy", "n", "queries"})
            elif (task, dataset) == ("seg", "voc"):
                assert set(values) == EXPECTED_KEYS[task] | {"background_included"}, (task, dataset)
                assert values["background_included"] is False
            else:
                assert set(values) == EXPECTED_KEYS[task], (task, dataset)
            if task in ("det", "seg"):
                assert values["queries"] == "present"  # the absent-class queries have no answers here

            n_rows = sum(1 for row in rows if (row["task"], row["dataset"]) == (task, dataset))
            assert values["n"] == n_rows  # absent-class queries have no answers here: not scored
    for dataset, m in metrics["seg"].items():
        assert m["mIoU"] >= 97, dataset
    assert metrics["cls"]["pets"]["accuracy"] == 100.0  # every breed asked: top-1
    assert metrics["cls"]["pets"]["queries"] == "all"
    assert metrics["cls"]["coco"]["verification_accuracy"] == 100.0
    assert metrics["cls"]["coco"]["queries"].startswith("present+")
    for dataset, m in metrics["depes"].items():
        assert m["rmse"] <= 0.05, dataset
    for dataset, m in metrics["det"].items():
        assert m["mAP"] >= 90 and m["AP50"] >= 98, (dataset, m)
    assert "absent-class queries:" in r.stdout and "NOT scored" in r.stdout
    assert r.stdout.strip().splitlines()[-1].startswith("done:")
    meta = json.loads((tmp_path / "metrics.meta.json").read_text())
    assert meta["failures"] == [] and meta["queries"]["absent_scored"] == 0
    assert meta["protocols"]["depes/sunrgbd"].startswith("toolbox protocol")


def test_missing_and_unreadable_answers_are_failures_scored_blank(pairs, perfect, tmp_path):
    answers = tmp_path / "answers"
    answers.mkdir()
    rows = rows_of(pairs)
    seg_ade = sorted(r["sample"] for r in rows if (r["task"], r["dataset"]) == ("seg", "ade20k"))
    missing, broken = seg_ade[:3], seg_ade[3]
    for f in perfect.iterdir():
        if f.stem not in [*missing, broken]:
            (answers / f.name).write_bytes(f.read_bytes())
    (answers / f"{broken}.jpg").write_bytes(b"not an image")
    out = tmp_path / "metrics.json"
    r = run_cli("--pairs", str(pairs), "--predictions", str(answers), "--out", str(out), "--quiet")
    assert r.returncode == 2, r.stderr
    for name in [*missing, broken]:
        assert name in r.stderr
    assert "answers missing or unreadable, scored as blank answers (4)" in r.stderr
    m = json.loads(out.read_text())["seg"]["ade20k"]
    assert m["n"] == len(seg_ade)  # counted, not skipped
    assert m["mIoU"] < 97
    meta = json.loads((tmp_path / "metrics.meta.json").read_text())
    assert sorted(f["sample"] for f in meta["failures"]) == sorted([*missing, broken])


def test_depth_is_scored_against_the_raw_16bit_depth_not_the_target(pairs, raw, tmp_path):
    """Exact targets as answers: the error left is the 8-bit quantisation, computed here independently."""
    from dataset_creation.readers import nyuv2
    from evaluation.scoring import score

    rows = [r for r in rows_of(pairs) if r["dataset"] == "nyuv2"]
    answers = {r["sample"]: pairs / r["sample"] / f"{r['stem']}_1.png" for r in rows}
    metrics = score(pairs, answers, datasets=["nyuv2"], progress=False)
    rmses = []
    for r in rows:
        gt = nyuv2.load_ground_truth(raw / "nyuv2", r).astype(np.float64)
        valid = (gt > 1e-3) & (gt < 10)
        valid[:45], valid[471:], valid[:, :41], valid[:, 601:] = (
            False,
            False,
            False,
            False,
        )  # Eigen crop, 640x480
        assert gt.shape == (480, 640)
        pred = np.clip((np.clip(np.floor(gt * 25.5), 1, 255) + 0.5) / 25.5, 1e-3, 10)  # truncated code, bin centre
        rmses.append(np.sqrt(np.mean((pred[valid] - gt[valid]) ** 2)))
    assert metrics["depes"]["nyuv2"]["rmse"] == pytest.approx(np.mean(rmses), rel=1e-4)
    assert 0 < metrics["depes"]["nyuv2"]["rmse"] < 0.02  # non-zero: the 8-bit target is not the truth


def test_ground_truth_falls_back_to_the_target_and_says_so(pairs, perfect, raw, tmp_path):
    from evaluation.answers import answer_index
    from evaluation.ground_truth import resolve_truth
    from evaluation.pairs import read_pairs
    from evaluation.queries import build_queries
    from evaluation.scoring import score_queries

    row = next(r for r in read_pairs(pairs) if (r["task"], r["dataset"]) == ("seg", "voc"))
    truth = resolve_truth(row, pairs_dir=pairs)
    assert truth.source == "raw" and not truth.value["valid"].all()  # VOC's 255 border is ignored
    moved = resolve_truth(row, data_root=tmp_path / "gone", pairs_dir=pairs)
    assert moved.source == "target" and "not found" in moved.note and moved.value["valid"] is None
    assert (moved.value["mask"] == truth.value["mask"]).mean() > 0.97

    qs = build_queries(read_pairs(pairs), datasets=["voc"], tasks=["seg"], absent_per_image=0)
    report = score_queries(qs.queries, pairs, answer_index(perfect), data_roots={"voc": tmp_path / "gone"},
                           progress=False)  # fmt: skip
    assert report.fallbacks["seg/voc"][0] == len(qs.queries)
    overridden = score_queries(qs.queries, pairs, answer_index(perfect), data_roots={"voc": raw / "voc"},
                               progress=False)  # fmt: skip
    assert overridden.fallbacks == {}


def test_absent_class_queries_are_seeded_and_really_absent(pairs):
    from evaluation.pairs import read_pairs
    from evaluation.queries import build_queries

    rows = read_pairs(pairs)
    a = build_queries(rows, seed=0)
    b = build_queries(rows, seed=0)
    assert [q["sample"] for q in a.queries] == [q["sample"] for q in b.queries]
    absent = [q for q in a.queries if q.get("absent")]
    assert a.n_absent == len(absent) > 0
    present: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        if r.get("class") and (r["task"] != "cls" or r.get("positive")):
            present.setdefault((r["dataset"], r["stem"]), set()).add(r["class"])
    images = {(r["task"], r["dataset"], r["stem"]) for r in rows if r["task"] in ("det", "seg")}
    assert {(q["task"], q["dataset"], q["stem"]) for q in absent} <= images
    for q in absent:
        assert q["class"] not in present[(q["dataset"], q["stem"])]
        assert q["class"].split()[-1].lower() in q["edit"].lower()
        assert q["sample"] not in {r["sample"] for r in rows}
    every = build_queries(rows, absent_per_image=-1, datasets=["voc"], tasks=["det"])
    classes = {r["class"] for r in rows if (r["task"], r["dataset"]) == ("det", "voc")}
    stem = next(q["stem"] for q in every.queries)
    asked = {q["class"] for q in every.queries if q["stem"] == stem}
    assert asked == classes  # -1: every class of the pool, present or absent, asked of the image


def test_limit_picks_the_same_images_every_time(pairs):
    from evaluation.pairs import read_pairs
    from evaluation.queries import build_queries

    rows = read_pairs(pairs)
    first = build_queries(rows, limit=2, seed=3)
    again = build_queries(rows, limit=2, seed=3)
    other = build_queries(rows, limit=2, seed=4)
    assert [q["sample"] for q in first.queries] == [q["sample"] for q in again.queries]
    per_group: dict[tuple[str, str], set[str]] = {}
    for q in first.queries:
        per_group.setdefault((q["task"], q["dataset"]), set()).add(q["stem"])
    assert all(len(stems) <= 2 for stems in per_group.values())
    assert [q["sample"] for q in first.queries] != [q["sample"] for q in other.queries]
    # every query of a chosen image is kept (cls top-1 needs all classes of the image)
    pets = [q for q in first.queries if (q["task"], q["dataset"]) == ("cls", "pets")]
    assert len(pets) == 2 * 37


def _boxes_answer(pairs: Path, q: dict, boxes: list[list[float]]) -> Image.Image:
    from evaluation.pairs import input_path
    from tasks import detection

    image = np.asarray(Image.open(input_path(pairs, q)).convert("RGB"))
    return degrade(
        Image.fromarray(detection.encode(image, np.asarray(boxes, dtype=np.float64).reshape(-1, 4)))
    )


def test_boxes_drawn_for_absent_classes_lower_map(pairs, perfect, tmp_path):
    from evaluation.answers import answer_index
    from evaluation.pairs import read_pairs
    from evaluation.queries import build_queries
    from evaluation.scoring import score_queries

    qs = build_queries(read_pairs(pairs), tasks=["det"], datasets=["voc"])
    absent = [q for q in qs.queries if q.get("absent")]
    assert absent
    empty_dir, boxed_dir = tmp_path / "empty", tmp_path / "boxed"
    empty_dir.mkdir()
    boxed_dir.mkdir()
    for q in qs.queries:
        if not q.get("absent"):
            for d in (empty_dir, boxed_dir):
                (d / f"{q['sample']}.png").write_bytes((perfect / f"{q['sample']}.png").read_bytes())
            continue
        _boxes_answer(pairs, q, []).save(empty_dir / f"{q['sample']}.png")
        w, h = Image.open(pairs / q["input_sample"] / f"{q['stem']}_0.jpg").size
        _boxes_answer(pairs, q, [[w * 0.2, h * 0.2, w * 0.7, h * 0.8]]).save(boxed_dir / f"{q['sample']}.png")
    clean = score_queries(qs.queries, pairs, answer_index(empty_dir), progress=False)
    boxed = score_queries(qs.queries, pairs, answer_index(boxed_dir), progress=False)
    assert clean.failures == [] and boxed.failures == []
    assert clean.absent["det/voc"]["empty_pct"] == 100.0
    assert boxed.absent["det/voc"]["empty_pct"] < 50 and boxed.absent["det/voc"]["boxes_per_query"] >= 0.5
    assert boxed.metrics["det"]["voc"]["mAP"] < clean.metrics["det"]["voc"]["mAP"] - 5
    assert boxed.metrics["det"]["voc"]["n"] == clean.metrics["det"]["voc"]["n"] == len(qs.queries)


def test_instructcv_protocol_is_reported_apart_and_is_higher(pairs, perfect, tmp_path):
    from evaluation.answers import answer_index
    from evaluation.pairs import read_pairs
    from evaluation.queries import build_queries
    from evaluation.scoring import score_queries

    qs = build_queries(read_pairs(pairs), tasks=["det", "depes"], datasets=["voc", "nyuv2"])
    report = score_queries(qs.queries, pairs, answer_index(perfect), protocol="instructcv", progress=False)
    det, depth = report.metrics["det"]["voc"], report.metrics["depes"]["nyuv2"]
    assert {"mAP_instructcv_protocol", "AP50_instructcv_protocol", "AP75_instructcv_protocol"} <= set(det)
    assert {"rmse_instructcv_protocol", "abs_rel_instructcv_protocol", "delta1_instructcv_protocol"} <= set(
        depth
    )
    assert depth["rmse_instructcv_protocol"] < depth["rmse"]  # masked pixels count as perfect
    standard = score_queries(qs.queries, pairs, answer_index(perfect), progress=False)
    assert standard.metrics["det"]["voc"] == {k: v for k, v in det.items() if not k.endswith("_protocol")}


# ------------------------------------------------------------------------------------------------
# the original project's scoring and the SUN RGB-D protocol on hand-worked examples


def test_filter_by_truth_keeps_the_best_box_per_object():
    from evaluation.protocols import filter_by_truth

    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    pred = np.array([[1, 1, 10, 10, 0.9], [0, 0, 9, 9, 0.8], [50, 50, 60, 60, 0.7], [21, 21, 24, 24, 0.6]])
    kept = filter_by_truth(pred, gt)
    # object 1: IoU 0.81 for both the first and the second box, argmax takes the first; object 2: IoU 0.09 < 0.2
    assert kept.tolist() == [[1, 1, 10, 10, 1.0]]
    assert filter_by_truth(pred, np.zeros((0, 4))).shape == (0, 5)


def test_original_depth_errors_mask_with_the_lowest_bit():
    from evaluation.protocols import original_depth_errors

    gt = np.array([[1.5, 2.5, 3.2, 0.0]])  # integer parts 1, 2, 3, 0: odd, even, odd, even
    pred = np.array([[1.2, 3.5, 5.9, 7.0]])  # integer parts 1, 3, 5, 7: all odd
    e = original_depth_errors(pred, gt)
    # kept: pixels 0 and 2; the other two count as perfect pixels
    assert e["rmse"] == pytest.approx(np.sqrt(((1.2 - 1.5) ** 2 + (5.9 - 3.2) ** 2) / 4))
    assert e["abs_rel"] == pytest.approx((0.3 / 1.2 + 2.7 / 5.9) / 4)  # divided by the prediction
    assert e["delta1"] == pytest.approx(
        2 / 4
    )  # 1.5/1.2 = 1.25 is not < 1.25, nor 5.9/3.2; the masked two are


def test_per_image_iou_mean():
    from evaluation.protocols import InstructCVSegmentation

    m = InstructCVSegmentation()
    a = np.zeros((4, 4), bool)
    a[:2] = True
    m.add("img1", a, a)  # IoU 1
    m.add("img1", a, np.zeros_like(a))  # IoU 0
    m.add("img2", np.zeros_like(a), np.zeros_like(a))  # empty/empty: 1 with the +1e-6
    assert m.compute()["mIoU_instructcv_protocol"] == pytest.approx(100 * (0.5 + 1) / 2)


def test_sunrgbd_depth_is_capped_at_8m_and_cropped_as_the_toolbox_does():
    from evaluation.protocols import new_metric

    gt = np.full((530, 730), 9.0)  # a kv2 frame size: the crop is absolute, not scaled
    pred = np.full_like(gt, 9.5)
    pred[100, 100] = 7.0
    m = new_metric("depes", "sunrgbd")
    m.add(pred, gt)
    n_valid = (471 - 45) * (601 - 41)
    assert m.compute()["rmse"] == pytest.approx(
        np.sqrt(1.0 / n_valid)
    )  # both capped to 8: one pixel off by 1 m


# ------------------------------------------------------------------------------------------------
# --ckpt with a tiny random model (the tiny_model_dir fixture of tests/conftest.py)


def load_evaluate():
    import importlib.util

    spec = importlib.util.spec_from_file_location("evaluate_cli", REPO / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ckpt_run_caches_answers_and_reuses_them(pairs, tiny_model_dir, tmp_path, monkeypatch):
    from evaluation import inference

    evaluate = load_evaluate()

    calls = {"load": 0, "images": 0}
    real_load = inference.load_model

    def counting_load(*args, **kwargs):
        calls["load"] += 1
        model = real_load(*args, **kwargs)
        real_generate = model.generate

        def generate(images, *a, **kw):
            calls["images"] += len(images)
            yield from real_generate(images, *a, **kw)

        model.generate = generate
        return model

    monkeypatch.setattr(inference, "load_model", counting_load)
    out = tmp_path / "run" / "tiny.json"
    argv = ["--pairs", str(pairs), "--ckpt", str(tiny_model_dir), "--out", str(out), "--datasets", "coco", "nyuv2",
            "--limit", "1", "--steps", "1", "--resolution", "64", "--batch-size", "4", "--quiet",
            "--cfg_text", "5", "--cfg-image", "1.2"]  # fmt: skip
    assert evaluate.main(argv) == 0
    metrics = json.loads(out.read_text())
    assert set(metrics) == {"det", "seg", "cls", "depes"}
    assert set(metrics["det"]["coco"]) == EXPECTED_KEYS["det"]
    assert set(metrics["seg"]["coco"]) == EXPECTED_KEYS["seg"]
    assert set(metrics["depes"]["nyuv2"]) == EXPECTED_KEYS["depes"]
    assert set(metrics["cls"]["coco"]) == {"verification_accuracy", "n", "queries"}
    assert metrics["det"]["coco"]["queries"] == "present+1absent"  # the model answered the absent queries
    meta = json.loads((tmp_path / "run" / "tiny.meta.json").read_text())
    cache = tmp_path / "run" / "tiny_answers"  # default: beside --out
    answers = sorted(cache.glob("*.png"))
    n = meta["queries"]["scored"]
    assert len(answers) == n == calls["images"] == meta["generation"]["generated"] > 0
    assert meta["queries"]["absent_scored"] > 0  # the model answered the absent-class queries too
    assert meta["settings"]["cfg_text"] == 5 and meta["settings"]["cfg_image"] == 1.2
    for a in answers:
        assert Image.open(a).size == Image.open(pairs / _input_sample(pairs, a.stem)).size

    mtimes = {a: a.stat().st_mtime_ns for a in answers}
    calls.update(load=0, images=0)
    assert evaluate.main(argv) == 0  # the re-run: every answer is in the cache
    assert calls == {"load": 0, "images": 0}
    assert {a: a.stat().st_mtime_ns for a in sorted(cache.glob("*.png"))} == mtimes
    assert json.loads(out.read_text()) == metrics
    assert json.loads((tmp_path / "run" / "tiny.meta.json").read_text())["generation"]["reused"] == n

    from instructcv.cli import UsageError

    with pytest.raises(UsageError, match="steps=1 \\(now 2\\)"):  # other settings never mix into one cache
        evaluate.main([*argv, "--steps", "2"])

    bad = tmp_path / "bad" / "m.json"
    with pytest.raises(
        UsageError, match="no such file"
    ):  # one line naming the source; the cache is not claimed
        evaluate.main(
            ["--pairs", str(pairs), "--ckpt", str(tmp_path / "no_model"), "--out", str(bad), "--quiet"]
        )
    assert not (bad.parent / "m_answers" / ".evaluate_settings.json").exists()


def _input_sample(pairs: Path, sample: str) -> str:
    """The input image (relative to the pairs folder) an answer belongs to; absent queries reuse a sample's."""
    from evaluation.pairs import read_pairs
    from evaluation.queries import build_queries

    for q in build_queries(read_pairs(pairs)).queries:
        if q["sample"] == sample:
            folder = q.get("input_sample") or q["sample"]
            return f"{folder}/{q['stem']}_0.jpg"
    raise KeyError(sample)


def test_top1_only_when_every_class_of_the_dataset_was_asked():
    from evaluation.protocols import new_metric

    def colours(present: bool) -> Image.Image:
        return Image.new("RGB", (16, 16), (255, 0, 0) if present else (0, 255, 0))

    def ask(metric, image: str, cls: str, present: bool, answer: bool) -> None:
        row = {"sample": f"{image}_cls_{cls}", "stem": image, "class": cls, "colors": ["red", "green"]}
        metric.add_answer(row, colours(answer), present)

    subset = new_metric("cls", "pets", classes=["cat", "dog", "cow"])
    ask(subset, "a", "cat", True, True)
    ask(subset, "a", "dog", False, True)  # wrong
    assert subset.compute() == {"verification_accuracy": 50.0, "n": 2}  # cow never asked: not top-1
    full = new_metric("cls", "pets", classes=["cat", "dog"])
    ask(full, "a", "cat", True, True)
    ask(full, "a", "dog", False, False)
    ask(full, "b", "cat", False, False)
    ask(full, "b", "dog", True, False)  # both answers say "absent": no class wins, so b is wrong
    assert full.compute()["n"] == 4 and set(full.compute()) == {"accuracy", "n"}


def test_training_samples_are_never_scored():
    from evaluation.queries import build_queries
    from instructcv.cli import UsageError

    row = {"sample": "x_depes", "stem": "x", "task": "depes", "dataset": "nyuv2", "class": None, "edit": "e"}
    with pytest.raises(UsageError, match="training samples only"):
        build_queries([{**row, "split": "train"}])
    qs = build_queries(
        [{**row, "split": "train"}, {**row, "sample": "y_depes", "stem": "y", "split": "eval"}]
    )
    assert [q["sample"] for q in qs.queries] == ["y_depes"] and "1 training sample" in qs.notes[0]


def test_an_absent_class_keeps_its_crowd_regions_as_ignore_regions(pairs, raw):
    """COCO images can hold a class only as iscrowd regions: no det/seg sample is written for it, so without cls
    pairs it may be drawn as an absent class; boxing or masking that crowd must then not be a false positive."""
    from evaluation.ground_truth import resolve_truth
    from evaluation.pairs import read_pairs
    from evaluation.queries import build_queries

    data = json.loads((raw / "coco" / "annotations" / "instances_val2017.json").read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    files = {im["id"]: im["file_name"] for im in data["images"]}
    anns: dict[tuple[int, int], list[dict]] = {}
    for a in data["annotations"]:
        anns.setdefault((a["image_id"], a["category_id"]), []).append(a)
    crowd_only = [(k, v) for k, v in anns.items() if all(a.get("iscrowd") for a in v)]
    assert crowd_only, "the synthetic COCO set should have a class present only as a crowd region"
    (image_id, cat), crowds = crowd_only[0]
    stem = "coco_" + Path(files[image_id]).stem
    rows = read_pairs(pairs)
    positives = {(r["stem"], r["class"]) for r in rows if r["task"] == "cls" and r.get("positive")}
    assert (
        stem,
        names[cat],
    ) in positives  # with cls pairs, a crowd-only class counts as present: never asked
    qs = build_queries([r for r in rows if r["task"] != "cls"], datasets=["coco"], absent_per_image=-1)
    det = next(q for q in qs.queries if q["stem"] == stem and q["class"] == names[cat] and q["task"] == "det")
    seg = next(q for q in qs.queries if q["stem"] == stem and q["class"] == names[cat] and q["task"] == "seg")
    assert det.get("absent") and seg.get("absent")
    truth = resolve_truth(det, pairs_dir=pairs).value
    expected = [
        [a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in crowds
    ]
    assert truth["boxes"].tolist() == expected and truth["crowd"].all()
    mask = resolve_truth(seg, pairs_dir=pairs).value
    assert not mask["mask"].any() and (~mask["valid"]).sum() > 0
