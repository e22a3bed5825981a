"""edit_cli.py: a folder of good and bad images, re-runs, placeholders and one-line errors."""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from instructcv.cli import UsageError

REPO = Path(__file__).resolve().parents[1]


def load_cli():
    spec = importlib.util.spec_from_file_location("edit_cli", REPO / "edit_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cli = load_cli()


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / "edit_cli.py"), *args], capture_output=True, text=True,
                          env=env, cwd=cwd or REPO, timeout=300)


def picture(width: int, height: int, seed: int = 0) -> np.ndarray:
    small = np.random.default_rng(seed).integers(0, 256, (max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC))


@pytest.fixture()
def mixed_folder(tmp_path) -> Path:
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(picture(100, 70, 1)).save(root / "good.jpg", quality=90)
    Image.fromarray(picture(48, 80, 2)).save(root / "sub" / "tall.v2.png")  # dotted name, nested folder
    rgba = np.dstack([picture(64, 64, 3), np.full((64, 64), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(root / "rgba.png")
    depth = (np.linspace(0, 60000, 72 * 56).reshape(56, 72)).astype(np.uint16)
    Image.fromarray(depth).save(root / "depth16.png")
    buf = io.BytesIO()
    Image.fromarray(picture(80, 80, 4)).save(buf, format="JPEG", quality=90)
    (root / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (root / "notes.jpg").write_text("this is a text file, not a picture\n")
    return root


GOOD = {"good.png": (100, 70), "sub/tall.v2.png": (48, 80), "rgba.png": (64, 64), "depth16.png": (72, 56)}


def test_folder_with_bad_images_answers_the_good_ones_and_reruns_skip_them(mixed_folder, tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    args = ["--input", str(mixed_folder), "--output", str(out), "--edit", "Segment the cat.", "--ckpt",
            str(tiny_model_dir), "--steps", "2", "--resolution", "64", "--batch-size", "2", "--seed", "1"]
    first = run_cli(*args)
    assert first.returncode == 2, first.stderr
    assert "truncated.jpg" in first.stderr and "notes.jpg" in first.stderr
    assert "Traceback" not in first.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted(GOOD)  # no temporary files left, nothing for the bad images
    for name, size in GOOD.items():
        with Image.open(out / name) as img:
            assert img.size == size and img.mode == "RGB"
    assert "answered 4 of 6 images" in first.stderr and "2 skipped" in first.stderr

    mtimes = {name: (out / name).stat().st_mtime_ns for name in GOOD}
    second = run_cli(*args)
    assert second.returncode == 2  # the bad images are still bad, and still named
    assert "truncated.jpg" in second.stderr and "notes.jpg" in second.stderr
    assert "answered 0 of 6 images" in second.stderr and "4 already done" in second.stderr
    assert {name: (out / name).stat().st_mtime_ns for name in GOOD} == mtimes


def test_answers_equal_the_python_api(tiny_model_dir, tmp_path):
    """The CLI is a thin layer: its answer file is what InstructCV returns for the same settings."""
    from ldm.inference import InstructCV

    image = tmp_path / "in" / "cat.jpg"
    image.parent.mkdir()
    Image.fromarray(picture(90, 60, 5)).save(image, quality=95)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        status = cli.main(["--input", str(image), "--output", str(tmp_path / "out"), "--edit", "Detect the dog.",
                           "--ckpt", str(tiny_model_dir), "--steps", "3", "--resolution", "64", "--seed", "4",
                           "--quiet", "--device", "cpu"])
        expected = InstructCV.from_pretrained(tiny_model_dir, device="cpu")(
            image, "Detect the dog.", steps=3, resolution=64, seed=4, progress=False)[0]
    finally:
        torch.set_num_threads(n)
    assert status == 0
    with Image.open(tmp_path / "out" / "cat.png") as got:
        assert np.array_equal(np.asarray(got), np.asarray(expected))


def test_placeholders_are_filled_only_by_their_options():
    edit = "Show * if there is a % in the picture, otherwise show #."
    assert cli.fill_placeholders(edit, "dog", "red", "green") == (
        "Show red if there is a dog in the picture, otherwise show green.")
    assert cli.fill_placeholders("Segment the cat.", None, None, None) == "Segment the cat."
    with pytest.raises(UsageError, match="--class"):
        cli.fill_placeholders("Segment the %.", None, None, None)
    with pytest.raises(UsageError, match="--negative"):
        cli.fill_placeholders(edit, "dog", "red", None)


def test_output_names_keep_relative_paths_and_never_collide(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    paths = [root / "a.jpg", root / "a.png", root / "x" / "b.c.jpg"]
    stems = cli.output_stems(paths, root, tmp_path / "out")
    assert [str(s.relative_to(tmp_path / "out")) for s in stems] == ["a_jpg", "a_png", "x/b.c"]
    assert cli.answer_path(stems[2]).name == "b.c.png"
    (root / "one.jpg").write_bytes(b"")
    assert cli.output_stems([root / "one.jpg"], root / "one.jpg", tmp_path / "o") == [tmp_path / "o" / "one"]


def test_underscore_spellings_are_accepted():
    args = cli.build_parser().parse_args(
        ["--input", "i", "--output", "o", "--edit", "e", "--cfg_text", "5", "--cfg_image", "1.2", "--batch_size", "4"])
    assert (args.cfg_text, args.cfg_image, args.batch_size) == (5.0, 1.2, 4)
    help_text = cli.build_parser().format_help()
    assert "examples:" in help_text and "--cfg-text" in help_text and "--cfg_text" in help_text


@pytest.mark.parametrize(
    "case, expected",
    [
        ("empty_folder", "no images found"),
        ("missing_input", "no such file or folder"),
        ("empty_edit", "--edit is empty"),
        ("missing_ckpt", "no_model: no such file or folder"),
    ],
)
def test_unusable_input_is_one_clear_error(case, expected, tmp_path, mixed_folder):
    (tmp_path / "empty").mkdir()
    inputs = {"empty_folder": tmp_path / "empty", "missing_input": tmp_path / "nowhere"}.get(case, mixed_folder)
    edit = "   " if case == "empty_edit" else "Segment the cat."
    argv = ["--input", str(inputs), "--output", str(tmp_path / "out"), "--edit", edit,
            "--ckpt", str(tmp_path / "no_model")]
    with pytest.raises(UsageError, match=expected) as err:
        cli.main(argv)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_asking_for_a_missing_gpu_is_one_clear_error(tmp_path, tiny_model_dir, mixed_folder):
    with pytest.raises(UsageError, match="CUDA is not available.*--device cpu"):
        cli.main(["--input", str(mixed_folder), "--output", str(tmp_path / "out"), "--edit", "Segment the cat.",
                  "--ckpt", str(tiny_model_dir), "--device", "cuda"])


def test_offline_hub_id_is_one_line_on_stderr(tmp_path):
    img = tmp_path / "x.png"
    Image.fromarray(picture(64, 64)).save(img)
    result = run_cli("--input", str(img), "--output", str(tmp_path / "out"), "--edit", "Segment the cat.",
                     "--ckpt", "alaa-lab/InstructCV", cwd=tmp_path)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "alaa-lab/InstructCV" in errors[0] and "download_pretrained_weights.sh" in errors[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "x.png").exists()


@pytest.mark.parametrize("script", ["download_pretrained_weights.sh", "download_pretain_weights.sh"])
def test_weights_script_offline_says_what_to_do(script, tmp_path):
    dest = tmp_path / "weights"
    result = subprocess.run(["bash", str(REPO / "scripts" / script), str(dest)], capture_output=True, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120)
    assert result.returncode != 0
    assert result.stderr.strip().startswith("error:") and len(result.stderr.strip().splitlines()) == 1
    assert "alaa-lab/InstructCV" in result.stderr and "--ckpt" in result.stderr
    assert not dest.exists()



def test_answers_never_overwrite_inputs(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(picture(64, 64)).save(folder / "a.png")
    with pytest.raises(UsageError, match="input folder"):
        cli.main(["--input", str(folder), "--output", str(folder), "--edit", "Segment the cat."])
    with pytest.raises(UsageError, match="overwrite this input"):
        cli.main(["--input", str(folder / "a.png"), "--output", str(folder), "--edit", "Segment the cat."])
    assert sorted(p.name for p in folder.iterdir()) == ["a.png"]


def test_an_output_folder_inside_the_input_folder_is_not_read_back(tmp_path):
    folder = tmp_path / "imgs"
    (folder / "out").mkdir(parents=True)
    Image.fromarray(picture(64, 64)).save(folder / "a.png")
    Image.fromarray(picture(64, 64)).save(folder / "out" / "a.png")
    assert cli.find_inputs(folder, folder / "out") == [folder / "a.png"]


def test_an_unknown_answer_colour_is_one_line_naming_it_and_the_known_ones(tmp_path):
    img = tmp_path / "x.png"
    Image.fromarray(picture(64, 64)).save(img)
    result = run_cli("--input", str(img), "--output", str(tmp_path / "out"), "--decode",
                     "--edit", "Show chartreuse if there is a cat in the picture, otherwise show green.", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "unknown colour 'chartreuse'" in errors[0] and "RosyBrown" in errors[0]
    assert not (tmp_path / "out" / "x.png").exists()
    # a palette colour in any spelling is fine: the same command with "rosy brown" gets past the check
    ok = run_cli("--input", str(img), "--output", str(tmp_path / "out"), "--edit",
                 "Show rosy brown if there is a cat in the picture, otherwise show Aqua.", "--ckpt", str(tmp_path / "none"),
                 cwd=tmp_path)
    assert "unknown colour" not in ok.stderr and "no such file" in ok.stderr  # it failed later, on the missing model
