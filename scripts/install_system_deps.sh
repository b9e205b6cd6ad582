#!/usr/bin/env bash
# Optional system packages (Debian/Ubuntu, as root): FFmpeg shared libraries for
# torchcodec (the faster decoder). Everything works without them through PyAV.
set -u
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "skipping system packages (needs root and apt-get)"; exit 0
fi
exit 0
