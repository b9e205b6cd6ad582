#!/usr/bin/env bash
# Optional decoder dependencies, called by `make setup` after the project is installed:
#   1. Debian's FFmpeg 5.1 shared libraries (root + apt-get only), which torchcodec loads at import;
#   2. torchcodec itself, pip-installed into the project's virtualenv.
# Everything works without them through PyAV (its wheel bundles FFmpeg); the torchcodec tests then
# skip -- except under VSSL_REQUIRE_TORCHCODEC=1 (.ci/run), where they fail.
#
# Usage: scripts/install_system_deps.sh [PYTHON]   (default: $VIRTUAL_ENV/bin/python, else .venv/bin/python)
set -u
cd "$(dirname "$0")/.."

# torchcodec >= 0.12 is built against torch's stable ABI and supports torch >= 2.11 and FFmpeg 4-9
# (its compatibility table); 0.17 is the newest checked here with torch 2.14.1 and Debian 12's FFmpeg 5.1.
TORCHCODEC_SPEC="${VSSL_TORCHCODEC_SPEC:-torchcodec>=0.12,<0.18}"
FFMPEG_LIBS="libavcodec59 libavformat59 libavutil57 libswscale6 libswresample4 libavdevice59 libavfilter8"

PY="${1:-}"
if [ -z "$PY" ]; then
  if [ -n "${VIRTUAL_ENV:-}" ]; then PY="$VIRTUAL_ENV/bin/python"; else PY=".venv/bin/python"; fi
fi
status=0

# ---- 1. FFmpeg shared libraries (Debian 12 package names; other releases name them differently)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends $FFMPEG_LIBS >/dev/null 2>&1; then
    echo "installed FFmpeg shared libraries ($FFMPEG_LIBS)"
  else
    echo "note: could not apt-get install $FFMPEG_LIBS (not Debian 12? no network?)"
    status=1
  fi
else
  echo "skipping FFmpeg system libraries (needs root and apt-get); install them yourself for torchcodec"
fi

# ---- 2. torchcodec into the virtualenv
if [ -x "$PY" ]; then
  if "$PY" -m pip install -q "$TORCHCODEC_SPEC"; then
    if "$PY" -c "import torchcodec.decoders" >/dev/null 2>&1; then
      echo "torchcodec $("$PY" -c 'import torchcodec; print(torchcodec.__version__)') is importable"
    else
      echo "note: torchcodec installed but not importable (FFmpeg shared libraries missing?); PyAV will be used"
      status=1
    fi
  else
    echo "note: pip could not install $TORCHCODEC_SPEC"
    status=1
  fi
else
  echo "note: no python at $PY; pass the virtualenv's python as the first argument"
  status=1
fi
exit $status
