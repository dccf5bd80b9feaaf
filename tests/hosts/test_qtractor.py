"""Demixer's CLAP bundle in Qtractor (Debian's `qtractor` 0.9.31), as far as a headless machine allows.

Qtractor has no scripting, and its session engine cannot start here: besides JACK (`jackd -d
dummy` runs fine) it needs the ALSA sequencer (/dev/snd/seq, the snd-seq kernel module) and stops
with "The audio/MIDI engine could not be started" without it, before it loads a session's
plugins. So what runs is Qtractor's own plugin scanner (`qtractor_plugin_scan`, the helper the
application starts to index plugins): it loads the bundle, creates and initialises the plugin
(`create_plugin`, `init`), reads its ports, parameters, GUI and state extensions, and destroys it.
Qtractor counts only the main audio ports (CLAP_AUDIO_PORT_IS_MAIN), so in Qtractor Demixer is a
stereo effect: the four stem outputs cannot be routed there.

Set DEMIXER_SKIP_QTRACTOR=1 to skip (tests/setup.sh installs Qtractor).
"""
import os
import pathlib
import subprocess

import pytest

SCANNER = "/usr/lib/x86_64-linux-gnu/qtractor/qtractor_plugin_scan"

if os.environ.get("DEMIXER_SKIP_QTRACTOR") == "1":
    pytest.skip("DEMIXER_SKIP_QTRACTOR=1", allow_module_level=True)


def test_qtractor_instantiates_the_clap_plugin(clap_path, tmp_path):
    if not pathlib.Path(SCANNER).exists():
        pytest.fail("Qtractor is missing: tests/setup.sh installs the Debian package `qtractor`")
    env = dict(os.environ, HOME=str(tmp_path), QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(tmp_path))
    scan = subprocess.run([SCANNER], input=f"CLAP:{clap_path}\n", env=env, capture_output=True, text=True, timeout=60)
    assert scan.returncode == 0, scan.stderr
    lines = [line for line in scan.stdout.splitlines() if line.startswith("CLAP|")]
    assert len(lines) == 1, scan.stdout + scan.stderr
    kind, name, audio, midi, controls, flags, filename, index, _uid = lines[0].split("|")
    assert (name, filename, index) == ("Demixer", clap_path, "0")
    assert audio == "2:2", "main input and output, stereo (Qtractor ignores the stem ports)"
    assert midi == "0:0"
    # Qtractor counts every input parameter, the non-automatable Loop Cache size too.
    assert controls == "17:0", "seventeen parameters, no read-only ones"
    assert set(flags.split(",")) == {"GUI", "EXT", "RT"}, "an editor and the state extension"
