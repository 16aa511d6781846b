#!/usr/bin/env bash
# Set up everything the tests need and run them: Debian packages for the real screen-capture,
# browser and CJK-font tests, the training and dev extras, then ruff, mypy and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v Xvfb >/dev/null || need+=(xvfb)
command -v chromium >/dev/null || need+=(chromium)
fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || need+=(fonts-noto-cjk fontconfig)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian packages: ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
bash scripts/setup.sh train,dev,ray
.venv/bin/ruff check animerec tests scripts
.venv/bin/mypy animerec
.venv/bin/python -m pytest -q "$@"
