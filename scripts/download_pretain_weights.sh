#!/usr/bin/env bash
# The original project's (misspelled) name for download_pretrained_weights.sh; kept so old instructions work.
exec bash "$(dirname -- "${BASH_SOURCE[0]}")/download_pretrained_weights.sh" "$@"
