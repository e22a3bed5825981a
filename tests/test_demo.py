"""`make demo` end to end with a minimal step count: data, pairs, both training stages, answers, evaluation.

The demo runs once per session (about a minute on 2 cores); the tests read what it wrote, re-run it to
check that nothing is redone, and break a stage to check the error.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scripts.demo_summary import CELL, HEADER
from tests.conftest import REPO_ROOT

SMALL = "--vae-steps 3 --num-train 4 --num-eval 2 --answers 2 --sampling-steps 2 --no-progress"
TASK_DATASETS = {"det": {"coco"}, "seg": {"ade20k", "coco", "pets"}, "cls": {"coco", "pets"}, "depes": {"nyuv2"}}


def make_demo(out: Path, extra: str = SMALL, steps: int = 3) -> subprocess.CompletedProcess:
    """`make demo` as a user runs it, with this interpreter and without re-running the set-up."""
    command = ["make", "--no-print-directory", "-o", ".venv/.installed", "demo", f"PY={sys.executable}",
               f"DEMO_STEPS={steps}", f"DEMO_OUT={out}", f"DEMO_ARGS={extra}"]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("demo") / "out"
    result = make_demo(out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result


def test_prints_every_stage_and_a_table_with_all_four_tasks(demo):
    out, result = demo
    for stage in range(1, 8):
        assert f"==> [{stage}/7]" in result.stdout
    assert "$ " in result.stdout and "main.py --name demo " in result.stdout  # the commands are shown
    table = result.stdout.split("standard metrics on the held-out synthetic pairs", 1)[1]
    rows = [line.split() for line in table.splitlines() if line.split()[:1] in (["det"], ["seg"], ["cls"], ["depes"])]
    assert {(r[0], r[1]) for r in rows} == {(t, d) for t, ds in TASK_DATASETS.items() for d in ds}
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    for row in rows:  # the printed numbers are the ones in metrics.json
        task, dataset, n = row[0], row[1], int(row[2])
        assert metrics[task][dataset]["n"] == n > 0
        first_metric, value = row[3], float(row[4])
        assert value == pytest.approx(metrics[task][dataset][first_metric], abs=0.051)
    assert 0 <= metrics["seg"]["ade20k"]["mIoU"] <= 100 and metrics["depes"]["nyuv2"]["rmse"] > 0
    assert str(out / "answers") in result.stdout and "training log:" in result.stdout


def test_prints_the_chance_score_beside_every_metric(demo):
    out, result = demo
    table = result.stdout.split("standard metrics on the held-out synthetic pairs", 1)[1]
    rows = [line for line in table.splitlines() if line.split()[:1] in (["det"], ["seg"], ["cls"], ["depes"])]
    chance = json.loads((out / "eval" / "chance.json").read_text())
    for line in rows:
        task, dataset = line.split()[:2]
        best = chance[task][dataset]
        assert f"| chance {best['metric']} " in line and f"({best['answer']})" in line
    assert chance["det"]["coco"]["value"] == 0.0 and chance["det"]["coco"]["answer"] == "no boxes"
    assert chance["depes"]["nyuv2"]["answer"] == "mean training depth" and chance["depes"]["nyuv2"]["value"] > 0
    eval_rows = [json.loads(line) for line in (out / "pairs" / "eval" / "metadata.jsonl").read_text().splitlines()]
    for dataset in ("coco", "pets"):  # the majority verdict: max(share present, share absent)
        present = [r["positive"] for r in eval_rows if r["task"] == "cls" and r["dataset"] == dataset]
        share = 100.0 * sum(present) / len(present)
        assert chance["cls"][dataset]["value"] == pytest.approx(max(share, 100.0 - share))
        assert chance["cls"][dataset]["answer"] == ("always present" if share >= 50 else "always absent")


def test_summary_picture_has_one_row_per_task(demo):
    out, _ = demo
    picture = np.asarray(Image.open(out / "summary.png").convert("RGB"))
    assert picture.shape[0] == HEADER + 4 * (CELL + 4)
    rows = [picture[HEADER + r * (CELL + 4): HEADER + r * (CELL + 4) + CELL] for r in range(4)]
    for row in rows:  # every row holds pictures, not only white
        assert (row < 250).any(axis=2).mean() > 0.3


def test_writes_decoded_answers_for_held_out_images(demo):
    out, _ = demo
    for task, suffixes in {"det": ["_boxes.png"], "seg": ["_mask.png"], "cls": [], "depes": ["_depth.png"]}.items():
        inputs = sorted((out / "held_out" / task).iterdir())
        assert 1 <= len(inputs) <= 2
        for image in inputs:
            size = Image.open(image).size
            answer = out / "answers" / task / f"{image.stem}.png"
            assert Image.open(answer).size == size  # answers come back at the input's size
            for suffix in suffixes:
                decoded = Image.open(out / "answers" / task / f"{image.stem}{suffix}")
                assert decoded.size == size
            if task in ("det", "cls"):  # the decoded verdict / boxes
                verdict = json.loads((out / "answers" / task / f"{image.stem}.json").read_text())
                assert verdict["task"] == task and verdict["image_size"] == list(size)
    mask = np.asarray(Image.open(next((out / "answers" / "seg").glob("*_mask.png"))))
    assert set(np.unique(mask)) <= {0, 255}
    rows = [json.loads(line) for line in (out / "pairs" / "eval" / "metadata.jsonl").read_text().splitlines()]
    train = {json.loads(line)["stem"] for line in (out / "pairs" / "train" / "metadata.jsonl").read_text().splitlines()}
    held_out = {p.stem.removesuffix("_0") for task in ("det", "depes") for p in (out / "held_out" / task).iterdir()}
    assert held_out <= {r["stem"] for r in rows} and not held_out & train  # never trained on


def test_trains_the_autoencoder_then_the_unet(demo):
    out, _ = demo
    from ldm.loading import load_components

    autoencoder = load_components(out / "runs" / "autoencoder")
    model = load_components(out / "runs" / "model")
    for key, value in autoencoder.vae.state_dict().items():  # stage 2 starts from stage 1's autoencoder, frozen
        assert np.array_equal(value.numpy(), model.vae.state_dict()[key].numpy()), key
    assert model.vae.config.scaling_factor != autoencoder.vae.config.scaling_factor  # scale_by_std fitted it
    assert model.scheduler_config["prediction_type"] == "v_prediction"
    assert (out / "runs" / "model" / "export" / "model_index.json").is_file()


def test_rerun_redoes_nothing(demo):
    out, _ = demo
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = make_demo(out)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("done already with these arguments; skipping") == 7
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_fewer_answers_redo_only_the_answers_and_evaluation(demo):
    out, _ = demo
    result = make_demo(out, SMALL.replace("--answers 2", "--answers 1"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("done already with these arguments; skipping") == 4  # data .. model
    for task in ("det", "seg", "cls", "depes"):  # no held-out copy or answer of the earlier run is left
        assert len(list((out / "held_out" / task).iterdir())) == 1
        assert len(list((out / "answers" / task).glob("*_0.png"))) == 1


def test_a_failing_stage_is_named_and_the_exit_status_says_so(demo, tmp_path):
    out, _ = demo
    broken = tmp_path / "broken_vae.yaml"
    broken.write_text("model:\n  params:\n    trainable: [bogus]\n")
    result = make_demo(out, f"{SMALL} --vae-config {broken}")
    assert result.returncode != 0
    assert "demo: stage 'autoencoder' failed: main.py exited with status 2" in result.stderr
    assert "trainable" in result.stderr  # main.py's own one-line reason
    assert not (out / ".stages" / "autoencoder.json").exists()
    assert (out / ".stages" / "pairs.json").exists()  # the data stages were kept


def test_bad_arguments_are_one_line_errors(tmp_path):
    result = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "demo.py"), "--steps", "0",
                             "--out", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.strip() == "error: --steps must be at least 1"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "demo.py"), "--config", "nope.yaml",
                             "--out", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "nope.yaml: no such config file" in result.stderr
