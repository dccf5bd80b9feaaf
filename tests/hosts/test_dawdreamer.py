"""Demixer's VST3 in DawDreamer (JUCE), which exposes all ten output channels and does not
compensate latency: the stems must sit exactly `reported latency` samples after the input."""
import dawdreamer as daw
import pytest
import numpy as np

from conftest import ROOT, choose_model, music

SR, BLOCK = 44100, 512
PORTS = ("mix", "drums", "bass", "other", "vocals")


def render(vst3_path, audio, model=None, **params):
    """Renders `audio` through the plugin with `params` (by name) set and, given `(model,
    state_file)`, that model chosen; returns (engine, plugin, ports). The engine owns the plugin:
    keep it alive while using the plugin."""
    engine = daw.RenderEngine(SR, BLOCK)
    source = engine.make_playback_processor("source", audio)
    plugin = engine.make_plugin_processor("demixer", vst3_path)
    plugin.enable_all_buses()
    if model is not None:
        choose_model(plugin, *model)
    names = {plugin.get_parameter_name(i): i for i in range(plugin.get_plugin_parameter_size())}
    for name, value in params.items():
        plugin.set_parameter(names[name], value)
    engine.load_graph([(source, []), (plugin, ["source"])])
    engine.render(audio.shape[1] / SR)
    out = plugin.get_audio()
    return engine, plugin, {name: out[2 * i:2 * i + 2] for i, name in enumerate(PORTS)}


def test_all_ten_outputs_and_the_latency_are_visible(vst3_path):
    _engine, plugin, ports = render(vst3_path, music(seconds=1.0))
    assert plugin.get_num_output_channels() == 10
    assert 0 < plugin.get_latency_samples() < 0.1 * SR  # the normal preset: under 100 ms


def test_stems_sum_to_the_input_delayed_by_the_reported_latency(vst3_path):
    audio = music()
    _engine, plugin, ports = render(vst3_path, audio)
    latency = plugin.get_latency_samples()
    stems = sum(ports[name] for name in PORTS[1:])
    expected = np.pad(audio, ((0, 0), (latency, 0)))[:, :audio.shape[1]]
    assert np.abs(stems - expected).max() < 1e-4
    assert np.abs(ports["mix"] - expected).max() < 1e-4
    for name in PORTS[1:]:
        energy = np.sum(ports[name] ** 2) / np.sum(audio ** 2)
        assert 0.001 < energy < 0.9, f"{name} holds {energy:.1%} of the energy"


def test_an_impulse_comes_out_of_the_drums_at_the_latency(vst3_path):
    audio = np.zeros((2, SR), dtype=np.float32)
    audio[:, 10_000] = 1.0
    _engine, plugin, ports = render(vst3_path, audio)
    assert int(np.argmax(np.abs(ports["drums"][0]))) == 10_000 + plugin.get_latency_samples()


def test_solo_mute_and_gain_shape_the_main_output_and_post_fader_stems(vst3_path):
    audio = music()
    _e1, plugin, plain = render(vst3_path, audio)
    latency = plugin.get_latency_samples()
    settle = latency + SR // 10  # past the start-up silence and the gain ramps
    _e2, _p2, solo = render(vst3_path, audio, **{"Vocals Solo": 1.0, "Drums Solo": 1.0})
    assert np.abs(solo["mix"] - plain["vocals"] - plain["drums"])[:, settle:].max() < 1e-4
    _e3, _p3, muted = render(vst3_path, audio, **{"Vocals Solo": 1.0, "Vocals Mute": 1.0, "Bass Solo": 1.0})
    assert np.abs(muted["mix"] - plain["bass"])[:, settle:].max() < 1e-4, "mute wins over solo"
    _e4, _p4, post = render(vst3_path, audio, **{"Other Gain": 0.0, "Stem Outputs Post-Fader": 1.0})
    assert np.abs(post["other"][:, settle:]).max() < 1e-6, "post-fader stem at the bottom of the fader is silent"
    assert np.abs(post["mix"] - plain["drums"] - plain["bass"] - plain["vocals"])[:, settle:].max() < 1e-4


def test_bypass_passes_the_input_delayed_and_silences_the_stems(vst3_path):
    audio = music(seconds=1.0)
    _engine, plugin, ports = render(vst3_path, audio, Bypass=1.0)
    latency = plugin.get_latency_samples()
    expected = np.pad(audio, ((0, 0), (latency, 0)))[:, :audio.shape[1]]
    assert np.abs(ports["mix"] - expected).max() < 1e-6
    assert all(np.abs(ports[name]).max() == 0.0 for name in PORTS[1:])


@pytest.mark.parametrize("rate", [768_000, 705_600, 1_000])
def test_unusual_host_rates_separate_without_taking_the_host_down(vst3_path, rate):
    """DXD rates and very low ones once made `activate` fail, and JUCE's `process()` after that
    aborted the host. Now HPSS runs resampled by a whole factor and the mix stays the input at
    the reported latency."""
    engine = daw.RenderEngine(rate, BLOCK)
    audio = music(sample_rate=rate, seconds=max(0.3, 12 * BLOCK / rate))
    source = engine.make_playback_processor("source", audio)
    plugin = engine.make_plugin_processor("demixer", vst3_path)
    plugin.enable_all_buses()
    engine.load_graph([(source, []), (plugin, ["source"])])
    engine.render(audio.shape[1] / rate)
    out = plugin.get_audio()
    latency = plugin.get_latency_samples()
    assert 0 < latency < audio.shape[1]
    expected = np.pad(audio, ((0, 0), (latency, 0)))[:, :audio.shape[1]]
    assert np.abs(out[0:2] - expected).max() < 1e-4
    assert np.abs(out[2:4, latency:]).max() > 1e-3, "the drums stem sounds"


def test_the_reference_delays_by_exactly_what_it_reports(reference_path):
    """DawDreamer does not compensate latency: the reference plugin (a plain delay that reports
    itself) comes out delayed by exactly its reported latency, as Demixer does above."""
    engine = daw.RenderEngine(SR, BLOCK)
    audio = music(seconds=1.0)
    source = engine.make_playback_processor("source", audio)
    plugin = engine.make_plugin_processor("reference", reference_path)
    engine.load_graph([(source, []), (plugin, ["source"])])
    engine.render(audio.shape[1] / SR)
    latency = plugin.get_latency_samples()
    assert latency == 1000
    expected = np.pad(audio, ((0, 0), (latency, 0)))[:, :audio.shape[1]]
    assert np.abs(plugin.get_audio()[:2] - expected).max() < 1e-6



def test_a_streaming_model_lines_up_exactly_on_every_output(vst3_path, tmp_path):
    """A streaming model (the published HS-TasNet interface with random weights: hop 128, 256
    samples of latency), chosen through the saved state as a restored project does: the plugin
    reports the model's latency plus its worker margin (one block and 5 ms), and an impulse comes
    out of every output exactly there, the stems summing to it."""
    model = ROOT / "dsp" / "tests" / "fixtures" / "onnx" / "published_interface.onnx"
    audio = np.zeros((2, SR // 2), dtype=np.float32)
    audio[:, 5000] = 1.0
    _engine, plugin, ports = render(vst3_path, audio, model=(model, tmp_path / "state.bin"))
    latency = plugin.get_latency_samples()
    assert latency == 256 + BLOCK + int(np.ceil(0.005 * SR)), latency
    for name in PORTS:
        assert int(np.argmax(np.abs(ports[name][0]))) == 5000 + latency, name
    stems = sum(ports[name] for name in PORTS[1:])
    assert abs(stems[0, 5000 + latency] - 1.0) < 1e-5
    assert np.max(np.abs(np.delete(stems[0], 5000 + latency))) < 1e-5
