"""The mixer window opens and draws: the standalone build (`demixer-standalone --backend dummy`,
no DAW, no audio device) runs under Xvfb, and a screenshot of its window must not be blank.
The screenshot is the README's, docs/mixer.png (without metadata, so an unchanged window leaves
the file unchanged): it cannot go stale while this test runs."""
import os
import pathlib
import shutil
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
STANDALONE = ROOT / "target" / "release" / "demixer-standalone"
SHOT = ROOT / "docs" / "mixer.png"
DISPLAY = ":97"


def wait_for(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def window_geometry(env):
    """(width, height, x, y) of the window titled Demixer, or None."""
    tree = subprocess.run(["xwininfo", "-root", "-tree"], env=env, capture_output=True, text=True).stdout
    for line in tree.splitlines():
        if '"Demixer"' in line:
            size, position = line.split()[-2:]
            width, height = size.split("+")[0].split("x")
            x, y = position.lstrip("+").split("+")
            return int(width), int(height), int(x), int(y)
    return None


def screenshot_spread(env, geometry):
    """Grabs the window's area and returns the standard deviation of its pixels (0 = blank)."""
    width, height, x, y = geometry
    subprocess.run(["import", "-window", "root", "-crop", f"{width}x{height}+{x}+{y}", "-strip", str(SHOT)],
                   env=env, check=True)
    out = subprocess.run(["convert", str(SHOT), "-format", "%[fx:standard_deviation]", "info:"],
                         capture_output=True, text=True, check=True).stdout
    return float(out)


def test_the_mixer_window_opens_and_draws():
    for tool in ("Xvfb", "xwininfo", "import", "convert"):
        assert shutil.which(tool), f"{tool} is missing (apt: xvfb x11-utils imagemagick)"
    assert STANDALONE.exists(), "build it: cargo build --release -p demixer --features standalone --bin demixer-standalone"
    env = dict(os.environ, DISPLAY=DISPLAY)
    xvfb = subprocess.Popen(["Xvfb", DISPLAY, "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    app = None
    try:
        wait_for(lambda: subprocess.run(["xwininfo", "-root"], env=env, capture_output=True).returncode == 0,
                 20, "Xvfb")
        app = subprocess.Popen([STANDALONE, "--backend", "dummy"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        geometry = wait_for(lambda: window_geometry(env), 60, "the Demixer window")
        assert geometry[0] >= 500 and geometry[1] >= 350, f"window too small: {geometry}"
        # The first frames may still be empty; a drawn mixer has text, faders and meters.
        wait_for(lambda: screenshot_spread(env, geometry) > 0.05, 30, "the mixer to draw (blank window)")
        assert app.poll() is None, f"the standalone exited: {app.stderr.read().decode()}"
    finally:
        if app:
            app.terminate()
            app.wait(timeout=10)
        xvfb.terminate()
        xvfb.wait(timeout=10)
