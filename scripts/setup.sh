#!/usr/bin/env bash
# Installs the Debian packages fashionclf builds and runs with (scripts/debian-packages.txt):
# libomp-dev (OpenMP for the kernels), zlib1g-dev (IDX .gz, model checksums), libpng-dev and
# libjpeg62-turbo-dev (photos, figures), libfreetype-dev and fonts-dejavu-core (text in figures),
# dataset-fashion-mnist (the data, in /usr/share/datasets/fashion-mnist), pkg-config, python3-numpy and
# python3-pytest (the Python package in python/ and its tests, run with /usr/bin/python3), chromium (the
# browser test of the HTML report, scripts/screenshot-report.sh --check).
set -euo pipefail
cd "$(dirname "$0")/.."
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq $(cat scripts/debian-packages.txt) >/dev/null
echo "Debian packages installed: $(tr '\n' ' ' < scripts/debian-packages.txt)"
