//! Loading a model engine on a thread of its own while HPSS keeps playing.
//!
//! The loader polls what the parameters and model settings ask for. When that is a model the
//! running stream does not have, it loads it (seconds: session creation and a warm-up inference),
//! builds a complete new stream around it and hands it to the audio thread through a lock-free
//! ring; the audio thread swaps it in and hands the old stream back through another ring, to be
//! stopped here. A loaded model is kept ("parked") when the plugin deactivates, so reactivating at
//! the same rate, as hosts do after a latency change, does not load it again, unless its file was
//! replaced meanwhile: then the new file loads, and the panel says so.

use std::path::PathBuf;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use demixer_state::{MixerStatus, ModelSettings};
use parking_lot::Mutex;
use ringbuf::traits::{Consumer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

use crate::model_choice::{FileIdentity, Model, ModelKey, Wish};
use crate::params::{DemixerParams, EngineChoice};
use crate::running::{Running, Setup, StartError};

/// How often the loader looks at the settings.
const SETTINGS_POLL: Duration = Duration::from_millis(50);
/// How long a resolved model name is trusted before the library is read again (a model
/// installed or removed meanwhile shows up), unless the settings change.
const RESOLVE_AGAIN: Duration = Duration::from_secs(2);
/// Streams in flight between the loader and the audio thread, each way.
const IN_FLIGHT: usize = 4;

/// State the plugin and the loader share.
#[derive(Default)]
pub struct Shared {
    /// The current activation; `None` while inactive.
    pub setup: Mutex<Option<Setup>>,
    /// A loaded engine not in any stream.
    parked: Mutex<Option<Model>>,
    /// The model last loaded or tried, and whether that failed. Not tried again while it stays
    /// the wish; a failed one is tried again after the wish was "none" (e.g. Engine set to HPSS).
    attempted: Mutex<Option<(ModelKey, bool)>>,
    /// The model file this instance last loaded, and its version then.
    loaded_file: Mutex<Option<(PathBuf, FileIdentity)>>,
}

impl Shared {
    /// Keeps `running`'s ONNX engine for later and stops its worker. Not on the audio thread.
    pub fn park(&self, running: Running) {
        if let Some(model) = running.into_model() {
            *self.parked.lock() = Some(model);
        }
    }

    /// The parked engine, if it serves `key` (see [`Model::serves`]) and was loaded from the
    /// version of its file there now.
    pub fn take_parked(&self, key: &ModelKey) -> Option<Model> {
        let mut parked = self.parked.lock();
        if parked.as_ref().is_some_and(|model| model.serves(key) && model.is_current()) { parked.take() } else { None }
    }

    /// Notes the model file `model` was loaded from; says so when it is a new version of the file
    /// this instance loaded before (it was replaced: the new file plays).
    fn replaced_note(&self, model: &Model) -> Option<String> {
        let (path, identity) = (model.key.file()?, model.file.clone()?);
        let mut loaded = self.loaded_file.lock();
        let replaced = loaded.as_ref().is_some_and(|(before, version)| before == path && *version != identity);
        *loaded = Some((path.to_path_buf(), identity));
        replaced.then(|| format!("{} was replaced since it was loaded: the new file plays", path.display()))
    }

    /// Tells the mixer that `model` is loaded, with the wish's `note` and, where its file was
    /// replaced since this instance loaded it, that too.
    pub fn loaded(&self, status: &MixerStatus, model: &Model, note: Option<String>) {
        let description = model.engine.description_with_notes();
        let notes: String =
            note.into_iter().chain(self.replaced_note(model)).map(|note| format!(" Note: {note}.")).collect();
        status.set_model_state(format!("Loaded: {description}.{notes}"), false);
    }

    /// Forgets what was tried, so the loader tries the current wish again.
    pub fn retry(&self) {
        *self.attempted.lock() = None;
    }

    /// Records that `key` is loaded or being loaded.
    pub fn attempted(&self, key: ModelKey) {
        *self.attempted.lock() = Some((key, false));
    }

    /// Records that the last attempt failed, and tells the mixer why.
    pub fn failed(&self, status: &MixerStatus, error: &dyn std::error::Error) {
        self.mark_failed();
        status.set_model_state(format!("The model did not load: {error}. HPSS plays."), true);
    }

    /// Records that the model `name` failed while playing (its output was not audio), and tells
    /// the mixer why. As after a failed load, it is tried again once the wish was "none".
    pub fn failed_playing(&self, status: &MixerStatus, name: &str, why: &str) {
        self.mark_failed();
        status.set_model_state(
            format!(
                "The model {name} failed: {why}. HPSS plays in its place; set the model to none (or Engine to HPSS) \
                 and back to retry."
            ),
            true,
        );
    }

    fn mark_failed(&self) {
        if let Some((_, failed)) = self.attempted.lock().as_mut() {
            *failed = true;
        }
    }
}

/// The audio thread's ends of the rings to and from the loader.
pub struct Handover {
    /// New streams from the loader.
    pub incoming: HeapCons<Box<Running>>,
    /// Old streams back to the loader, to be stopped there.
    pub outgoing: HeapProd<Box<Running>>,
    /// A stream that did not fit into `outgoing` yet.
    pub pending: Option<Box<Running>>,
}

impl Handover {
    /// Sends `old` back to the loader without blocking; keeps it for the next call when full.
    pub fn dispose(&mut self, old: Box<Running>) {
        if let Err(old) = self.outgoing.try_push(old) {
            self.pending = Some(old);
        }
    }

    /// Retries a stream that did not fit.
    pub fn flush(&mut self) {
        if let Some(old) = self.pending.take() {
            self.dispose(old);
        }
    }
}

/// The loader thread; stopped and joined when dropped.
pub struct Loader {
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl Loader {
    /// Starts the loader for one plugin instance and returns it with the audio thread's ends.
    pub fn spawn(params: Arc<DemixerParams>, status: Arc<MixerStatus>, shared: Arc<Shared>) -> (Loader, Handover) {
        let (to_audio, incoming) = HeapRb::new(IN_FLIGHT).split();
        let (outgoing, from_audio) = HeapRb::new(IN_FLIGHT).split();
        let (stop, stopped) = bounded(1);
        let worker = LoaderThread { params, status, shared, to_audio, from_audio, resolved: None };
        let thread = std::thread::Builder::new()
            .name("demixer-model-loader".into())
            .spawn(move || worker.run(stopped))
            .expect("the model loader thread starts");
        (Loader { stop, thread: Some(thread) }, Handover { incoming, outgoing, pending: None })
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The loader's thread: resolves the model settings, loads what they ask for and hands the new
/// stream to the audio thread.
struct LoaderThread {
    params: Arc<DemixerParams>,
    status: Arc<MixerStatus>,
    shared: Arc<Shared>,
    to_audio: HeapProd<Box<Running>>,
    from_audio: HeapCons<Box<Running>>,
    /// The last resolution: settings, engine choice and rate it was for, when, and its answer.
    resolved: Option<(ModelSettings, EngineChoice, f32, Instant, Wish)>,
}

impl LoaderThread {
    fn run(mut self, stopped: Receiver<()>) {
        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(SETTINGS_POLL) {
            while let Some(old) = self.from_audio.try_pop() {
                self.shared.park(*old);
            }
            self.poll();
        }
        while let Some(old) = self.from_audio.try_pop() {
            self.shared.park(*old);
        }
    }

    /// What the settings ask for at `setup`, read from the library at most every
    /// [`RESOLVE_AGAIN`] while the settings stay the same.
    fn wanted(&mut self, setup: &Setup) -> Wish {
        let settings = self.params.model.read().clone();
        let engine = self.params.engine.value();
        let fresh = self.resolved.as_ref().is_some_and(|(s, e, rate, at, _)| {
            *s == settings && *e == engine && *rate == setup.sample_rate && at.elapsed() < RESOLVE_AGAIN
        });
        if !fresh {
            let wanted = Wish::of(&self.params, setup);
            self.resolved = Some((settings, engine, setup.sample_rate, Instant::now(), wanted));
        }
        self.resolved.as_ref().map_or(Wish::Hpss, |(.., wanted)| wanted.clone())
    }

    /// Loads what is wanted, if that is new.
    fn poll(&mut self) {
        let Some(setup) = self.shared.setup.lock().clone() else { return };
        let (key, note) = match self.wanted(&setup) {
            Wish::Model { key, note } => (key, note),
            Wish::Hpss => {
                let no_model = self.params.engine.value() == EngineChoice::Onnx;
                let text = if no_model { "Choose an ONNX model below; HPSS plays until then." } else { "" };
                self.status.set_model_state(text, no_model);
                if self.shared.attempted.lock().as_ref().is_some_and(|(_, failed)| *failed) {
                    self.shared.retry();
                }
                return;
            }
            Wish::Unavailable(missing) => {
                self.status.set_model_state(missing, true);
                self.shared.retry();
                return;
            }
        };
        if self.shared.attempted.lock().as_ref().is_some_and(|(tried, _)| *tried == key) {
            return;
        }
        self.shared.attempted(key.clone());
        let name = key.spec.name();
        self.status.set_model_state(format!("Loading {name}… (HPSS plays meanwhile)"), false);
        let result =
            self.shared.take_parked(&key).map_or_else(|| key.load().map_err(StartError::from), Ok).and_then(|model| {
                self.shared.loaded(&self.status, &model, note);
                Running::start(setup.clone(), &self.params, &self.status, &self.shared, Some(model))
            });
        match result {
            Ok(running) => {
                if let Err(running) = self.to_audio.try_push(Box::new(running)) {
                    self.shared.park(*running);
                    self.shared.retry();
                }
            }
            Err(e) => self.shared.failed(&self.status, &e),
        }
    }
}

#[cfg(test)]
mod tests {
    use demixer_dsp::EngineSpec;
    use demixer_dsp::onnx::OnnxConfig;

    use super::*;

    #[test]
    fn a_model_file_replaced_after_loading_is_loaded_again_and_the_panel_says_so() {
        let path = std::env::temp_dir().join(format!("demixer-replaced-{}.onnx", std::process::id()));
        std::fs::write(&path, b"the first model").unwrap();
        let spec = EngineSpec::Model(OnnxConfig { model: path.clone(), ..OnnxConfig::default() });
        let key = ModelKey { spec, sample_rate: 44_100.0 };
        // A model "loaded" from the file as it is now (the engine itself does not matter here).
        let loaded = || Model {
            key: key.clone(),
            engine: demixer_dsp::build(&EngineSpec::Dry, 44_100.0).unwrap(),
            file: FileIdentity::of(&path),
        };
        let shared = Shared::default();
        assert_eq!(shared.replaced_note(&loaded()), None, "the first load");
        *shared.parked.lock() = Some(loaded());
        assert!(shared.take_parked(&key).is_some(), "the same file: the parked model plays on");

        *shared.parked.lock() = Some(loaded());
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"another model, a little longer").unwrap();
        assert!(shared.take_parked(&key).is_none(), "a replaced file is loaded again");
        let note = shared.replaced_note(&loaded()).expect("a note for the panel");
        assert!(note.contains("was replaced since it was loaded: the new file plays"), "{note}");
        assert_eq!(shared.replaced_note(&loaded()), None, "said once");
        std::fs::remove_file(&path).unwrap();
    }

    /// The panel tells the user to set the model to none and back after a failure while playing;
    /// the loader retries only a failed attempt (it was only the panel's text before).
    #[test]
    fn a_model_that_fails_while_playing_counts_as_failed_so_the_loader_tries_it_again() {
        let (shared, status) = (Shared::default(), MixerStatus::default());
        shared.attempted(ModelKey { spec: EngineSpec::Dry, sample_rate: 44_100.0 });
        shared.failed_playing(&status, "model.onnx", "its output holds NaN");
        assert!(shared.attempted.lock().as_ref().is_some_and(|(_, failed)| *failed));
        let state = status.model_state.lock();
        assert!(state.problem && state.text.contains("model.onnx failed: its output holds NaN"), "{}", state.text);
    }
}
