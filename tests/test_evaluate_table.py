"""evaluate.py --table: result files of InstructCV and a baseline merged into the paper's table (MD, CSV, PNG)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / "evaluate.py"), *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)  # fmt: skip


def write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def test_table_merges_two_result_files_into_markdown_csv_and_png(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    # evaluate.py's output: metrics.json plus the .meta.json naming the model
    ours = write(results / "instructcv.json", {
        "det": {"coco": {"mAP": 12.345, "AP50": 30.0, "AP75": 10.0, "n": 900,
                         "mAP_instructcv_protocol": 48.1, "AP50_instructcv_protocol": 70.0}},
        "seg": {"ade20k": {"mIoU": 40.25, "pixel_acc": 80.0, "n": 3000}},
        "cls": {"pets": {"accuracy": 82.5, "n": 37 * 100}, "imagenet": {"verification_accuracy": 90.0, "n": 50}},
        "depes": {"nyuv2": {"rmse": 0.4567, "abs_rel": 0.1, "log10": 0.05, "delta1": 0.8, "delta2": 0.9,
                            "delta3": 0.95, "n": 654, "rmse_instructcv_protocol": 0.297}},
    })  # fmt: skip
    write(results / "instructcv.meta.json", {"model": "InstructCV (ours)", "failures": []})
    # a baseline's result file: model and meta inside
    base = write(results / "baseline_seg_segformer_ade20k.json", {
        "seg": {"ade20k": {"mIoU": 51.0, "pixel_acc": 83.0, "n": 2000}, "voc": {"mIoU": 70.0, "n": 1449}},
        "model": "SegFormer-B5", "meta": {"skipped_items": []},
    })  # fmt: skip
    out = results / "table.md"
    files = sorted(str(p) for p in results.glob("*.json"))  # the shell's results/*.json, .meta.json included
    r = run_cli("--table", *files, "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith("done: 3 row(s) from 2 file(s)")

    md = out.read_text()
    lines = [line for line in md.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[0] == "Model" and len(header) == 9
    order = ["NYUv2 RMSE", "SUN RGB-D RMSE", "ADE20K mIoU", "VOC mIoU", "Oxford-Pets Acc", "ImageNet-sub Acc",
             "COCO mAP", "VOC mAP"]  # fmt: skip
    assert [next(o for o in order if o in h) for h in header[1:]] == order  # the paper's column order
    rows = {
        cells[0]: cells[1:]
        for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:])
    }
    assert rows["InstructCV (ours)"] == ["0.457", "–", "40.2", "–", "82.5", "90.0†", "12.3", "–"]
    assert rows["SegFormer-B5"] == ["–", "–", "51.0", "70.0", "–", "–", "–", "–"]
    assert rows["InstructCV (ours) (original InstructCV scoring)"] == [
        "0.297",
        "–",
        "–",
        "–",
        "–",
        "–",
        "48.1",
        "–",
    ]
    assert "† verification accuracy" in md

    with open(out.with_suffix(".csv"), newline="") as f:
        table = list(csv.DictReader(f))
    by_model = {row["model"]: row for row in table}
    assert float(by_model["SegFormer-B5"]["seg_ade20k_mIoU"]) == 51.0
    assert by_model["SegFormer-B5"]["seg_voc_mIoU_n"] == "1449"
    assert by_model["InstructCV (ours)"]["cls_imagenet_accuracy_is_verification"] == "1"
    assert by_model["InstructCV (ours)"]["depes_sunrgbd_rmse"] == ""

    with Image.open(out.with_suffix(".png")) as im:
        im.load()
        assert im.format == "PNG" and im.width >= 800 and im.height >= 400
        pixels = im.convert("RGB").getcolors(1 << 20)
    assert pixels is not None and len(pixels) > 10  # bars and text, not a blank canvas

    assert base.exists() and ours.exists()


def test_table_names_unusable_files_and_exits_2(tmp_path):
    good = write(tmp_path / "run.json", {"det": {"voc": {"mAP": 33.3, "AP50": 50.0, "AP75": 30.0, "n": 10}}})
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    other = write(tmp_path / "other.json", {"hello": 1})
    out = tmp_path / "t.md"
    r = run_cli(
        "--table", str(good), str(broken), str(other), str(tmp_path / "absent.json"), "--out", str(out)
    )
    assert r.returncode == 2
    for name in ("broken.json", "other.json", "absent.json"):
        assert name in r.stderr
    assert "| run | – | – | – | – | – | – | – | 33.3 |" in out.read_text()  # named by its file stem
    r = run_cli("--table", str(broken), "--out", str(out))
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith(
        "error: --table: no usable result file"
    )
