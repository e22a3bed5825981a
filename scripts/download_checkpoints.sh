#!/usr/bin/env bash
# Download Stable Diffusion v1.5 (v1-5-pruned-emaonly, 4.3 GB), the initial weights configs/train.yaml expects,
# into checkpoints/, and check its SHA-256.
#
#   bash scripts/download_checkpoints.sh                 # -> checkpoints/v1-5-pruned-emaonly.safetensors
#   bash scripts/download_checkpoints.sh --ckpt          # -> checkpoints/v1-5-pruned-emaonly.ckpt (pickle format)
#   bash scripts/download_checkpoints.sh --dest /data/sd # another folder (then set model.params.ckpt_path)
#
# The original runwayml/stable-diffusion-v1-5 repository is gone; the files come from its maintained mirror
# stable-diffusion-v1-5/stable-diffusion-v1-5 on the Hugging Face Hub (same files, same checksums).
# Environment: SD15_REPO (default stable-diffusion-v1-5/stable-diffusion-v1-5), PYTHON (default .venv/bin/python),
# HF_TOKEN if your account needs one. Re-running skips a verified file and resumes a partial download.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
FORMAT=safetensors
DEST="$ROOT/checkpoints"
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --ckpt) FORMAT=ckpt ;;
    --dest) DEST="${2:?--dest needs a folder}"; shift ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
REPO="${SD15_REPO:-stable-diffusion-v1-5/stable-diffusion-v1-5}"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"

exec "$PY" - "$REPO" "$FORMAT" "$DEST" <<'PYEOF'
import hashlib
import os
import sys
from pathlib import Path

repo, fmt, dest = sys.argv[1], sys.argv[2], Path(sys.argv[3])
name = f"v1-5-pruned-emaonly.{fmt}"
# Published SHA-256 of the two files (identical on the runwayml original and on the mirror).
SHA256 = {
    "v1-5-pruned-emaonly.safetensors": "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa",
    "v1-5-pruned-emaonly.ckpt": "cc6cb27103417325ff94f52b7a5d2dde45a7515b25c255d8e396c90014281516",
}
target = dest / name
hint = (f"download https://huggingface.co/{repo}/resolve/main/{name} on a machine with internet access, "
        f"copy it to {target} and run this script again to check it")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def verified(path: Path) -> bool:
    print(f"checking SHA-256 of {path} ...", file=sys.stderr)
    return sha256(path) == SHA256[name]


if target.is_file():
    if verified(target):
        print(f"{target}: already there, checksum OK")
        sys.exit(0)
    sys.exit(f"error: {target} exists but its SHA-256 is not the published {SHA256[name]}; "
             "delete it and run the script again")

if os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
    sys.exit(f"error: HF_HUB_OFFLINE is set, so {name} cannot be downloaded; unset it, or {hint}")
try:
    from huggingface_hub import hf_hub_download
except ImportError:
    sys.exit("error: huggingface_hub is not installed (make setup, or pip install huggingface_hub)")

dest.mkdir(parents=True, exist_ok=True)
print(f"downloading {repo}/{name} (4.3 GB) into {dest} ...", file=sys.stderr)
try:
    path = Path(hf_hub_download(repo_id=repo, filename=name, local_dir=str(dest)))
except KeyboardInterrupt:
    sys.exit("interrupted; run the script again to resume")
except Exception as e:  # no network, moved repository, refused token: one line, no traceback
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    sys.exit(f"error: cannot download {repo}/{name} ({type(e).__name__}: {first}); if this machine is offline, {hint}")
if not verified(path):
    bad = path.with_name(path.name + ".bad")
    path.rename(bad)
    sys.exit(f"error: downloaded file has the wrong SHA-256 (kept as {bad}); run the script again")
print(f"{path}: SHA-256 OK; configs/train.yaml reads it as model.params.ckpt_path")
PYEOF
