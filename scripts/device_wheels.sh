#!/usr/bin/env bash
# The wheels a lent GPU machine lacks, fetched here into .whl/ (git-ignored) for
# scripts/device_check.sh. That machine's python3 (3.12) holds torch, torchvision, timm,
# transformers, pandas, scipy, scikit-learn, typer, rich, jinja2, pyarrow and pytest, but not
# open_clip and its text cleaner, nor platformdirs (see /work/.library/device/KINDS.md).
# Versions are this project's pins (constraints.txt) where it pins them.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .whl open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 platformdirs==4.14.8
ls -l .whl
