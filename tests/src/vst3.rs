//! The plugin through its VST3 entry points, driven as a host does, for what the CLAP host cannot
//! send: VST3's own call orders, and output buses with channels missing.

use std::ffi::{c_char, c_void};

use vst3::Steinberg::Vst::SymbolicSampleSizes_::kSample32;
use vst3::Steinberg::Vst::{
    AudioBusBuffers, AudioBusBuffers__type0, IAudioProcessor, IAudioProcessorTrait, IComponent, IComponentTrait,
    ProcessData, ProcessModes, ProcessSetup,
};
use vst3::Steinberg::{IPluginBaseTrait, IPluginFactory, IPluginFactoryTrait, int32, kResultOk};
use vst3::{ComPtr, Interface};

use crate::{Build, plugin_library};

/// Frames per `process()` call in [`process_all`].
pub const BLOCK: usize = 512;
/// The plugin's output buses: Mix, then the stems.
pub const OUTPUTS: usize = 5;

/// The plugin library (`build`) and a fresh, initialised instance of it.
pub fn instance(build: Build) -> (libloading::Library, ComPtr<IComponent>) {
    let library = unsafe { libloading::Library::new(plugin_library(build)) }.expect("load the plugin");
    let get_factory: libloading::Symbol<'_, unsafe extern "system" fn() -> *mut c_void> =
        unsafe { library.get(b"GetPluginFactory") }.expect("a VST3 entry point");
    let factory = unsafe { ComPtr::<IPluginFactory>::from_raw(get_factory().cast()) }.expect("a factory");
    let mut instance = std::ptr::null_mut();
    let created = unsafe {
        factory.createInstance(
            b"DemixerStemSplit".as_ptr().cast::<c_char>(),
            IComponent::IID.as_ptr().cast::<c_char>(),
            &mut instance,
        )
    };
    assert_eq!(created, kResultOk);
    let component = unsafe { ComPtr::<IComponent>::from_raw(instance.cast()) }.expect("a component");
    assert_eq!(unsafe { component.initialize(std::ptr::null_mut()) }, kResultOk);
    (library, component)
}

/// Sets up processing in `mode` at 44.1 kHz with blocks of up to [`BLOCK`] samples, and
/// activates.
pub fn set_up_and_activate(component: &ComPtr<IComponent>, processor: &ComPtr<IAudioProcessor>, mode: ProcessModes) {
    let mut setup = ProcessSetup {
        processMode: mode as int32,
        symbolicSampleSize: kSample32 as int32,
        maxSamplesPerBlock: BLOCK as int32,
        sampleRate: 44_100.0,
    };
    unsafe {
        assert_eq!(processor.setupProcessing(&mut setup), kResultOk);
        assert_eq!(component.setActive(1), kResultOk);
    }
}

/// What a host gives an output bus in each `process()` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Given {
    /// Both channels.
    Stereo,
    /// One channel: `numChannels` 1.
    Left,
    /// Two channel pointers, the right one null.
    NullRight,
    /// No channel: `numChannels` 0 and no channel array (a bus the host deactivated).
    Nothing,
}

/// Runs `input` (stereo) through `processor` in blocks of [`BLOCK`] samples, each `process()`
/// call saying `mode`, with the output buses `given` (`numOutputs` is their number), and a
/// zero-length call before every block when `empty_calls`; returns the five stereo outputs (Mix,
/// then the stems) as `[output][channel]`, silent where not given.
pub fn process_all(
    processor: &ComPtr<IAudioProcessor>,
    mode: ProcessModes,
    input: &[Vec<f32>; 2],
    given: &[Given],
    empty_calls: bool,
) -> Vec<[Vec<f32>; 2]> {
    let len = input[0].len();
    let mut outputs: Vec<[Vec<f32>; 2]> = (0..OUTPUTS).map(|_| [vec![0.0; len], vec![0.0; len]]).collect();
    let mut block_in = [vec![0.0f32; BLOCK], vec![0.0f32; BLOCK]];
    let mut block_out: Vec<[Vec<f32>; 2]> = (0..OUTPUTS).map(|_| [vec![0.0; BLOCK], vec![0.0; BLOCK]]).collect();
    for start in (0..len).step_by(BLOCK) {
        let n = BLOCK.min(len - start);
        for (block, channel) in block_in.iter_mut().zip(input) {
            block[..n].copy_from_slice(&channel[start..start + n]);
        }
        block_out.iter_mut().flatten().for_each(|channel| channel.fill(0.0));
        let mut in_pointers: Vec<*mut f32> = block_in.iter_mut().map(|c| c.as_mut_ptr()).collect();
        let mut out_pointers: Vec<[*mut f32; 2]> = block_out
            .iter_mut()
            .zip(given)
            .map(|([l, r], given)| match given {
                Given::NullRight => [l.as_mut_ptr(), std::ptr::null_mut()],
                _ => [l.as_mut_ptr(), r.as_mut_ptr()],
            })
            .collect();
        let bus = |channels: int32, pointers: *mut *mut f32| AudioBusBuffers {
            numChannels: channels,
            silenceFlags: 0,
            __field0: AudioBusBuffers__type0 { channelBuffers32: pointers },
        };
        let mut inputs = [bus(2, in_pointers.as_mut_ptr())];
        let mut outs: Vec<AudioBusBuffers> = out_pointers
            .iter_mut()
            .zip(given)
            .map(|(pointers, given)| match given {
                Given::Stereo | Given::NullRight => bus(2, pointers.as_mut_ptr()),
                Given::Left => bus(1, pointers.as_mut_ptr()),
                Given::Nothing => bus(0, std::ptr::null_mut()),
            })
            .collect();
        let calls: &[usize] = if empty_calls { &[0, n] } else { &[n] };
        for &samples in calls {
            let mut data = ProcessData {
                processMode: mode as int32,
                symbolicSampleSize: kSample32 as int32,
                numSamples: samples as int32,
                numInputs: 1,
                numOutputs: given.len() as int32,
                inputs: inputs.as_mut_ptr(),
                outputs: outs.as_mut_ptr(),
                inputParameterChanges: std::ptr::null_mut(),
                outputParameterChanges: std::ptr::null_mut(),
                inputEvents: std::ptr::null_mut(),
                outputEvents: std::ptr::null_mut(),
                processContext: std::ptr::null_mut(),
            };
            assert_eq!(unsafe { processor.process(&mut data) }, kResultOk);
        }
        for (output, block) in outputs.iter_mut().zip(&block_out) {
            for (channel, samples) in output.iter_mut().zip(block) {
                channel[start..start + n].copy_from_slice(&samples[..n]);
            }
        }
    }
    outputs
}
