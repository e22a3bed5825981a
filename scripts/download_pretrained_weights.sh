#!/usr/bin/env bash
# Download the released InstructCV weights (Hugging Face: alaa-lab/InstructCV, a diffusers folder) so that
# edit_cli.py / evaluate.py can load them offline.
#
#   bash scripts/download_pretrained_weights.sh                 # -> checkpoints/InstructCV (edit_cli's default)
#   bash scripts/download_pretrained_weights.sh /data/instructcv
#   python edit_cli.py --input imgs/ --output out/ --edit "Segment the cat." --ckpt checkpoints/InstructCV
#
# Environment: INSTRUCTCV_REPO (default alaa-lab/InstructCV), INSTRUCTCV_REVISION (default main),
# WITH_SAFETY_CHECKER=1 to also fetch the unused 1.2 GB safety checker, PYTHON (default .venv/bin/python),
# HF_TOKEN if your account needs one. About 4.3 GB. Re-running resumes and skips finished files.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
case "${1:-}" in
  -h|--help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
DEST="${1:-$ROOT/checkpoints/InstructCV}"
REPO="${INSTRUCTCV_REPO:-alaa-lab/InstructCV}"
REVISION="${INSTRUCTCV_REVISION:-main}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"

exec "$PY" - "$REPO" "$REVISION" "$DEST" "${WITH_SAFETY_CHECKER:-0}" <<'PYEOF'
import os
import sys
from pathlib import Path

repo, revision, dest, with_safety = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4] == "1"
hint = (f"download {repo} on a machine with internet access (this script, or: hf download {repo} --local-dir "
        f"checkpoints/InstructCV), copy the folder here and pass it as --ckpt <folder>")

try:
    from huggingface_hub import snapshot_download
except ImportError:
    sys.exit("error: huggingface_hub is not installed (make setup, or pip install huggingface_hub)")

if os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
    sys.exit(f"error: HF_HUB_OFFLINE is set, so {repo} cannot be downloaded; unset it, or {hint}")

ignore = [] if with_safety else ["safety_checker/*"]  # InstructCV never runs the NSFW checker
print(f"downloading {repo}@{revision} into {dest} ...", file=sys.stderr)
try:
    snapshot_download(repo_id=repo, revision=revision, local_dir=str(dest), ignore_patterns=ignore)
except KeyboardInterrupt:
    sys.exit("interrupted; run the script again to resume")
except Exception as e:  # no network, unknown repo, refused token: one line, no traceback
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    sys.exit(f"error: cannot download {repo} ({type(e).__name__}: {first}); if this machine is offline, {hint}")

# The pieces InstructCV loads; a partial or unexpected snapshot is reported rather than used.
needed = ["model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json",
          "tokenizer/vocab.json", "scheduler/scheduler_config.json"]
missing = [n for n in needed if not (dest / n).is_file()]
for part in ("unet", "vae", "text_encoder"):
    if not any((dest / part).glob(pattern) for pattern in ("*.safetensors", "*.bin")):
        missing.append(f"{part}/ weights")
if missing:
    sys.exit(f"error: {dest} is incomplete after download (missing: {', '.join(missing)}); run the script again")
size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file() and ".cache" not in p.parts)
print(f"done: {repo} in {dest} ({size / 2**30:.1f} GiB)\n"
      f"use it: python edit_cli.py --input imgs/ --output out/ --edit \"Segment the cat.\" --ckpt {dest}")
PYEOF
