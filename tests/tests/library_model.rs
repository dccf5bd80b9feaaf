//! The plugin finds a model saved in a project by its library name (`demixer models`): an offline
//! bounce with the name plays exactly what the same model chosen by its path plays; a name not
//! installed leaves HPSS playing. One test in this file, because it sets `DEMIXER_MODELS_DIR` for
//! the process (the plugin is loaded into it).

use std::path::PathBuf;

use clack_extensions::render::RenderMode;
use demixer_host_tests::{Build, DEFAULT_CONFIG, SR, choose_model, load, music, render, set_mode};
use demixer_models::digest::file_sha256;
use demixer_models::library::{Installed, Library, ModelKind};

#[test]
fn a_library_model_plays_by_name_and_a_missing_one_leaves_hpss() {
    let root = std::env::temp_dir().join(format!("demixer-library-model-{}", std::process::id()));
    // SAFETY: the only test of this process sets it before any plugin thread starts.
    unsafe { std::env::set_var("DEMIXER_MODELS_DIR", &root) };
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../dsp/tests/fixtures/onnx/four.onnx");
    let library = Library::at(root.clone());
    let staging = library.stage("four").unwrap();
    std::fs::copy(&fixture, staging.dir().join("four.onnx")).unwrap();
    let (sha256, size) = file_sha256(&fixture).unwrap();
    let record = Installed {
        name: "four".into(),
        kind: ModelKind::Segment,
        file: "four.onnx".into(),
        sha256: sha256.clone(),
        size,
        summary: String::new(),
        source: "test".into(),
        dir: PathBuf::new(),
    };
    staging.commit(record).unwrap();

    let input = music(SR as usize / 2);
    let bounce = |model: &str, sha256: &str| {
        let (_entry, mut instance) = load(Build::Checked);
        choose_model(&mut instance, model, sha256);
        let latency = set_mode(&mut instance, RenderMode::Offline);
        (latency, render(&mut instance, DEFAULT_CONFIG, &input, &[], None, || 512, |_, _| {}))
    };
    let by_path = bounce(&fixture.to_string_lossy(), "");
    let by_name = bounce("four", &sha256);
    let hpss = bounce("", "");
    let missing = bounce("not-installed", &sha256);
    std::fs::remove_dir_all(&root).unwrap();

    assert_ne!(by_path.0, hpss.0, "the model has its own latency");
    assert_eq!(by_name, by_path, "the name plays the model it names");
    assert_eq!(missing, hpss, "a missing model leaves HPSS playing");
}
