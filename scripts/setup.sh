#!/usr/bin/env bash
# Create .venv at the repository root and install Animerec into it (editable).
#   bash scripts/setup.sh            the runtime: recognise, annotate, run, serve, bench
#   bash scripts/setup.sh train,dev  plus training/export (TensorFlow, tf2onnx) and the test tools
# Nothing is reinstalled when the packaging files (setup.cfg, pyproject.toml, the version) are
# unchanged since the last install and it covered the extras asked for: .venv/.animerec-install
# holds their hash and the extras installed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
"$python" - <<'PY'
import sys
if not ((3, 10) <= sys.version_info[:2] <= (3, 12)):
    sys.exit(f"Animerec supports Python 3.10 to 3.12; this is {sys.version.split()[0]} (set PYTHON=...)")
PY
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.animerec-install
digest=$(cat setup.cfg pyproject.toml animerec/__init__.py |
         .venv/bin/python -c "import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())")
same_packaging=false
installed=""  # the extras an install with these same packaging files already covers
if [ -f "$stamp" ] && [ "$(sed -n 1p "$stamp")" = "$digest" ]; then
  same_packaging=true
  installed="$(sed -n 2p "$stamp")"
fi
missing=""
for extra in ${extras//,/ }; do
  [[ ",$installed," == *",$extra,"* ]] || missing="$missing $extra"
done
if $same_packaging && [ -z "$missing" ] && [ -x .venv/bin/animerec ]; then
  echo "animerec $(.venv/bin/python -c 'import animerec; print(animerec.__version__)') is up to date in .venv" >&2
  exit 0
fi
# pip's and setuptools' notes (the editable-install notice) go to a log; shown when pip fails.
log=.venv/pip-install.log
.venv/bin/python -m pip install --quiet --upgrade pip >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
if ! .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}" >>"$log" 2>&1; then
  cat "$log" >&2
  exit 1
fi
grep -E "^(ERROR|WARNING): " "$log" >&2 || true  # pip's own problems, such as dependency conflicts
all="$(printf '%s\n' ${installed//,/ } ${extras//,/ } | sort -u | paste -sd, -)"
printf '%s\n%s\n' "$digest" "$all" >"$stamp"
echo "animerec installed in .venv: $(.venv/bin/animerec --version)" >&2
