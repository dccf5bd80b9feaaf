//! The plugin through its VST3 entry points, in orders hosts use that nice-plug 0.4.2 got wrong
//! (both patched in third_party/nice-plug, see DEMIXER-PATCHES.md):
//! - `setupProcessing(kOffline)`, then `setActive(true)`: 0.4.2 handed `activate` the process mode
//!   of the *previous* `setupProcessing` call. The activation's mode shows in the latency: with a
//!   model chosen, an offline activation loads the model and reports its latency, a real-time one
//!   reports HPSS's while the model loads in the background.
//! - `setProcessing(true)`, then the controller's `setParamNormalized` (what the Steinberg
//!   validator's bypass-persistence test does): 0.4.2 dropped the value.
//! - `setupProcessing(kRealtime)`, then `process()` calls whose `ProcessData::processMode` is
//!   kOffline (how Ardour 7 exports): 0.4.2 never told the plugin, which then played its real-time
//!   fallback (silent stems) wherever the export ran ahead of its worker.
//!
//! ONNX Runtime comes from `DEMIXER_ORT_DYLIB` (tests/run.sh sets it).

use std::ffi::c_void;
use std::path::PathBuf;
use std::sync::Mutex;

use demixer_dsp::onnx::{self, OnnxConfig};
use demixer_host_tests::Build;
use demixer_host_tests::vst3::{Given, OUTPUTS, instance, process_all, set_up_and_activate};
use vst3::Steinberg::IBStream_::IStreamSeekMode_::{kIBSeekCur, kIBSeekEnd, kIBSeekSet};
use vst3::Steinberg::Vst::ParameterInfo_::ParameterFlags_::kIsBypass;
use vst3::Steinberg::Vst::ProcessModes_::{kOffline, kRealtime};
use vst3::Steinberg::Vst::{
    IAudioProcessor, IAudioProcessorTrait, IComponent, IComponentTrait, IEditController, IEditControllerTrait,
    ParameterInfo, ProcessModes,
};
use vst3::Steinberg::{IBStream, IBStreamTrait, IPluginBaseTrait, int32, int64, kResultOk, tresult};
use vst3::{Class, ComPtr, ComWrapper};

/// An in-memory `IBStream` for the plugin's state.
struct Stream(Mutex<(Vec<u8>, usize)>);

impl Class for Stream {
    type Interfaces = (IBStream,);
}

impl IBStreamTrait for Stream {
    unsafe fn read(&self, buffer: *mut c_void, bytes: int32, read: *mut int32) -> tresult {
        let mut guard = self.0.lock().unwrap();
        let (data, position) = &mut *guard;
        let n = (bytes.max(0) as usize).min(data.len() - *position);
        unsafe { std::ptr::copy_nonoverlapping(data[*position..].as_ptr(), buffer.cast(), n) };
        *position += n;
        if !read.is_null() {
            unsafe { *read = n as int32 };
        }
        kResultOk
    }

    unsafe fn write(&self, buffer: *mut c_void, bytes: int32, written: *mut int32) -> tresult {
        let mut guard = self.0.lock().unwrap();
        let (data, position) = &mut *guard;
        let n = bytes.max(0) as usize;
        let new = unsafe { std::slice::from_raw_parts(buffer.cast::<u8>(), n) };
        data.truncate(*position);
        data.extend_from_slice(new);
        *position += n;
        if !written.is_null() {
            unsafe { *written = n as int32 };
        }
        kResultOk
    }

    unsafe fn seek(&self, offset: int64, mode: int32, result: *mut int64) -> tresult {
        let mut guard = self.0.lock().unwrap();
        let (data, position) = &mut *guard;
        let base = match mode as u32 {
            m if m == kIBSeekSet => 0,
            m if m == kIBSeekCur => *position as int64,
            m if m == kIBSeekEnd => data.len() as int64,
            _ => return vst3::Steinberg::kInvalidArgument,
        };
        *position = (base + offset).clamp(0, data.len() as int64) as usize;
        if !result.is_null() {
            unsafe { *result = *position as int64 };
        }
        kResultOk
    }

    unsafe fn tell(&self, position: *mut int64) -> tresult {
        unsafe { *position = self.0.lock().unwrap().1 as int64 };
        kResultOk
    }
}

fn stream(data: Vec<u8>) -> ComPtr<IBStream> {
    ComWrapper::new(Stream(Mutex::new((data, 0)))).to_com_ptr::<IBStream>().unwrap()
}

fn fixture_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dsp/tests/fixtures/onnx/htdemucs_tiny.onnx")
}

/// Sets up processing in `mode`, activates, and returns the latency the plugin reports.
fn activate_in(component: &ComPtr<IComponent>, processor: &ComPtr<IAudioProcessor>, mode: ProcessModes) -> u32 {
    set_up_and_activate(component, processor, mode);
    unsafe {
        let latency = processor.getLatencySamples();
        assert_eq!(component.setActive(0), kResultOk);
        latency
    }
}

#[test]
fn activation_after_setup_processing_sees_that_calls_process_mode() {
    let (_library, component) = instance(Build::Checked);
    let processor: ComPtr<IAudioProcessor> = component.cast().expect("an audio processor");

    // Choose the model through the saved state, as a host restoring a project does.
    let saved = stream(Vec::new());
    assert_eq!(unsafe { component.getState(saved.as_ptr()) }, kResultOk);
    let bytes = saved_bytes(&saved);
    let mut json: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON state");
    let settings = serde_json::json!({ "model": fixture_model(), "runtime": "", "device": "cpu", "threads": 1 });
    json["fields"]["model"] = serde_json::Value::String(settings.to_string());
    let restored = stream(serde_json::to_vec(&json).unwrap());
    assert_eq!(unsafe { component.setState(restored.as_ptr()) }, kResultOk);

    let engine = onnx::load(&OnnxConfig { model: fixture_model(), ..Default::default() }, 44_100).unwrap().separator;
    let model_latency = engine.latency_samples() + engine.burst_samples();
    let realtime = activate_in(&component, &processor, kRealtime as ProcessModes) as usize;
    assert!(realtime < model_latency, "real time starts with HPSS ({realtime}) while the model loads");
    // The order that nice-plug 0.4.2 got wrong: offline right after a real-time setup.
    let offline = activate_in(&component, &processor, kOffline as ProcessModes) as usize;
    assert!(offline > model_latency, "an offline activation loads the model first: {offline} samples");
    let again = activate_in(&component, &processor, kRealtime as ProcessModes) as usize;
    assert!(again > model_latency, "the loaded model is kept for the next activation: {again} samples");
    assert_eq!(unsafe { component.terminate() }, kResultOk);
}

/// What the plugin wrote into `stream`.
fn saved_bytes(stream: &ComPtr<IBStream>) -> Vec<u8> {
    let mut end = 0;
    unsafe {
        stream.seek(0, kIBSeekEnd as int32, &mut end);
        stream.seek(0, kIBSeekSet as int32, std::ptr::null_mut());
    }
    let mut bytes = vec![0u8; end as usize];
    let mut read = 0;
    unsafe { stream.read(bytes.as_mut_ptr().cast(), end as int32, &mut read) };
    bytes
}

#[test]
fn the_controller_takes_a_bypass_change_while_processing() {
    let (_library, component) = instance(Build::Checked);
    let processor: ComPtr<IAudioProcessor> = component.cast().expect("an audio processor");
    let controller: ComPtr<IEditController> = component.cast().expect("an edit controller");
    let bypass = (0..unsafe { controller.getParameterCount() })
        .map(|index| {
            let mut info: ParameterInfo = unsafe { std::mem::zeroed() };
            assert_eq!(unsafe { controller.getParameterInfo(index, &mut info) }, kResultOk);
            info
        })
        .find(|info| info.flags & kIsBypass as int32 != 0)
        .expect("a bypass parameter")
        .id;
    set_up_and_activate(&component, &processor, kRealtime as ProcessModes);
    unsafe {
        assert_eq!(processor.setProcessing(1), kResultOk);
        for value in [1.0, 0.0, 1.0] {
            assert_eq!(controller.setParamNormalized(bypass, value), kResultOk);
            assert_eq!(controller.getParamNormalized(bypass), value, "the controller dropped bypass = {value}");
        }
        assert_eq!(processor.setProcessing(0), kResultOk);
        assert_eq!(component.setActive(0), kResultOk);
        assert_eq!(component.terminate(), kResultOk);
    }
}

#[test]
fn process_calls_that_say_offline_wait_for_the_worker_after_a_real_time_setup() {
    let (_library, component) = instance(Build::Checked);
    let processor: ComPtr<IAudioProcessor> = component.cast().expect("an audio processor");
    // Ardour's export: set up (and activated) for real time, then every block says offline, and
    // the blocks come much faster than real time.
    set_up_and_activate(&component, &processor, kRealtime as ProcessModes);
    let latency = unsafe { processor.getLatencySamples() } as usize;
    let input = demixer_host_tests::music(10 * 44_100);
    assert_eq!(unsafe { processor.setProcessing(1) }, kResultOk);
    let outputs = process_all(&processor, kOffline as ProcessModes, &input, &[Given::Stereo; OUTPUTS], false);
    unsafe {
        assert_eq!(processor.setProcessing(0), kResultOk);
        assert_eq!(component.setActive(0), kResultOk);
        assert_eq!(component.terminate(), kResultOk);
    }
    for channel in 0..2 {
        let worst = (latency..input[0].len())
            .map(|t| {
                let stems: f32 = outputs[1..].iter().map(|stem| stem[channel][t]).sum();
                (stems - input[channel][t - latency]).abs()
            })
            .fold(0.0, f32::max);
        assert!(worst < 1e-4, "channel {channel}: the stems miss the delayed input by up to {worst}");
    }
}
