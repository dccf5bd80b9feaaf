//! Finding ONNX Runtime: the search order, and a plain message when it is nowhere.
//! (Its own test binary: a process loads the library once, and this one must not load it.)

use std::path::PathBuf;

use demixer_dsp::onnx::runtime::{self, LIBRARY_NAME};
use demixer_dsp::onnx::{self, OnnxConfig};

#[test]
fn search_order_then_a_clear_error_when_no_candidate_loads() {
    let dir = std::env::temp_dir().join(format!("demixer-no-ort-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // SAFETY: this test binary has no other threads reading the environment.
    unsafe {
        std::env::set_var("DEMIXER_ORT_DYLIB", dir.join("from-demixer-variable.so"));
        std::env::set_var("ORT_DYLIB_PATH", &dir);
    }
    let user = dir.join("chosen-by-user.so");
    let installed = dir.join("installed-by-demixer.so");
    let candidates = runtime::candidates(Some(&user), Some(&installed));
    assert_eq!(candidates[..3], [user.clone(), dir.join("from-demixer-variable.so"), dir.join(LIBRARY_NAME)]);
    assert!(candidates[3].ends_with(LIBRARY_NAME) && candidates[3].is_absolute(), "next to the binary");
    assert_eq!(candidates[4], installed, "then the one `demixer models runtime --download` installed");
    assert_eq!(candidates[5], PathBuf::from(LIBRARY_NAME), "then the system's search path");

    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx/four.onnx");
    let result = onnx::load(&OnnxConfig { model, runtime: Some(user.clone()), ..Default::default() }, 44_100);
    match result {
        Err(error) => {
            let message = error.to_string();
            assert!(message.contains("ONNX Runtime 1.31.x not found"), "{message}");
            assert!(message.contains(&format!("{}: no such file", user.display())), "{message}");
            assert!(message.contains("pip"), "says how to get it: {message}");
        }
        // A machine with ONNX Runtime installed system-wide finds it last.
        Ok(engine) => assert!(engine.description.contains(&format!("from {LIBRARY_NAME}")), "{}", engine.description),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
