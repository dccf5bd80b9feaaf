#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine, and nothing that is already there: the
# apt packages below and the Python packages in tests/requirements.txt. tests/run.sh calls it.
# fluidsynth + a small GM soundfont render the quality set; museval's imports need ffmpeg (the WAV
# layout test uses it too); the standalone build needs ALSA and JACK headers; the mixer-window
# check needs Xvfb, Mesa's OpenGL, xwininfo and ImageMagick. Ardour 7 (Debian's `ardour`, without
# its recommends: about 23 MB to download, 116 MB installed) is the DAW of tests/hosts/test_ardour.py:
# its headless `ardour7-lua` and `ardour-vst3-scanner` need nothing else. Qtractor (with jackd2 and
# Qt 6, about 11 MB to download, 38 MB installed) loads the CLAP bundle (tests/hosts/test_qtractor.py).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
packages=(fluidsynth timgm6mb-soundfont ffmpeg libasound2-dev libjack-jackd2-dev
  xvfb x11-utils imagemagick libgl1-mesa-dri libglx-mesa0 ardour qtractor)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -r tests/requirements.txt
