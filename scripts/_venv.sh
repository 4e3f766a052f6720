# Shared by scripts/run and scripts/test: create .venv and install the project (and extras) when
# pyproject.toml changed since the last install. torch is pinned before anything can pull a CUDA build.
set -euo pipefail
ensure_venv() {
  local extras="$1"
  local stamp=".venv/.installed-${extras:-base}"
  local want
  want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    if [[ "$extras" == *st* ]]; then
      .venv/bin/python -m pip install -q "torch==2.13.0"
    fi
    .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
    echo "$want" > "$stamp"
  fi
}
