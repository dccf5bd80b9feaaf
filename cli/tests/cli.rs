//! End-to-end tests of `demixer separate` on real files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const STEMS: [&str; 4] = ["drums", "bass", "other", "vocals"];

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn example_song() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/song.flac")
}

fn demixer(args: &[&str], inputs: &[&Path], out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_demixer"))
        .arg("separate")
        .args(inputs)
        .arg("-o")
        .arg(out)
        .args(args)
        .output()
        .expect("demixer runs")
}

/// Reads a WAV file as `(sample_rate, channels)`.
fn read_wav(path: &Path) -> (u32, Vec<Vec<f32>>) {
    let mut reader = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = reader.spec();
    let n = spec.channels as usize;
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().map(Result::unwrap).collect(),
        hound::SampleFormat::Int => {
            let scale = (1i64 << (spec.bits_per_sample - 1)) as f32;
            reader.samples::<i32>().map(|s| s.unwrap() as f32 / scale).collect()
        }
    };
    (spec.sample_rate, (0..n).map(|c| samples.iter().skip(c).step_by(n).copied().collect()).collect())
}

fn sum_of_stems(dir: &Path) -> Vec<Vec<f32>> {
    let mut sum: Option<Vec<Vec<f32>>> = None;
    for stem in STEMS {
        let (_, channels) = read_wav(&dir.join(format!("{stem}.wav")));
        match &mut sum {
            None => sum = Some(channels),
            Some(s) => s.iter_mut().zip(&channels).for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(x, y)| *x += y)),
        }
    }
    sum.unwrap()
}

fn max_difference(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len(), "channel counts differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            assert_eq!(x.len(), y.len(), "lengths differ");
            x.iter().zip(y).map(|(p, q)| (p - q).abs()).fold(0.0, f32::max)
        })
        .fold(0.0, f32::max)
}

/// Writes a music-like float WAV (a chord, a bass line and clicks) and returns its channels.
fn write_song(path: &Path, sample_rate: u32, channels: usize, seconds: f32) -> Vec<Vec<f32>> {
    let len = (sample_rate as f32 * seconds) as usize;
    let signal: Vec<Vec<f32>> = (0..channels)
        .map(|c| {
            (0..len)
                .map(|i| {
                    let t = i as f32 / sample_rate as f32;
                    let tau = std::f32::consts::TAU;
                    let chord = (tau * 261.6 * t).sin() + (tau * 329.6 * t).sin();
                    let bass = (tau * 55.0 * t).sin();
                    let click = if i % (sample_rate as usize / 4) < 20 { 0.5 } else { 0.0 };
                    0.2 * chord * (1.0 - 0.5 * c as f32) + 0.3 * bass + click
                })
                .collect()
        })
        .collect();
    let spec = hound::WavSpec {
        channels: channels as u16,
        sample_rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    for t in 0..len {
        for channel in &signal {
            writer.write_sample(channel[t]).unwrap();
        }
    }
    writer.finalize().unwrap();
    signal
}

#[test]
fn stems_are_aligned_float_files_that_sum_to_the_input() {
    let dir = tempfile::tempdir().unwrap();
    for (rate, channels) in [(44_100, 2), (48_000, 1), (96_000, 2)] {
        let input = dir.path().join(format!("song{rate}.wav"));
        let signal = write_song(&input, rate, channels, 1.5);
        let result = demixer(&[], &[&input], &dir.path().join("out"));
        assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
        let song_dir = dir.path().join(format!("out/song{rate}"));
        for stem in STEMS {
            let path = song_dir.join(format!("{stem}.wav"));
            let spec = hound::WavReader::open(&path).unwrap().spec();
            assert_eq!((spec.sample_rate, spec.channels as usize), (rate, channels));
            assert_eq!((spec.sample_format, spec.bits_per_sample), (hound::SampleFormat::Float, 32));
        }
        let error = max_difference(&sum_of_stems(&song_dir), &signal);
        assert!(error < 1e-4, "{rate} Hz: stems differ from the aligned input by {error}");
    }
}

#[test]
fn separates_the_example_song() {
    let out = tempfile::tempdir().unwrap();
    let result = demixer(&["--preset", "low"], &[&example_song()], out.path());
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    for stem in STEMS {
        let (rate, channels) = read_wav(&out.path().join(format!("song/{stem}.wav")));
        assert_eq!((rate, channels.len(), channels[0].len()), (44_100, 2, 6 * 44_100));
        assert!(channels[0].iter().any(|&x| x.abs() > 1e-3), "{stem} is silent");
    }
}

#[test]
fn reads_mp3_ogg_and_mono_wav_from_a_folder_and_writes_chosen_stems_in_separate_folders() {
    let inputs = tempfile::tempdir().unwrap();
    for name in ["tone.ogg", "tone.mp3", "mono.wav"] {
        std::fs::copy(fixture(name), inputs.path().join(name)).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let result = demixer(&["--stems", "vocals,drums", "--format", "i16"], &[inputs.path()], out.path());
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    for (song, rate, channels) in [("tone.ogg", 32_000, 2), ("tone.mp3", 32_000, 2), ("mono", 22_050, 1)] {
        let dir = out.path().join(song);
        let mut written: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        written.sort();
        assert_eq!(written, ["drums.wav", "vocals.wav"], "{song}");
        let spec = hound::WavReader::open(dir.join("drums.wav")).unwrap().spec();
        assert_eq!((spec.sample_rate, spec.channels, spec.bits_per_sample), (rate, channels, 16), "{song}");
    }
    // Lossy decoders may pad, but not by more than a frame or two.
    let (_, mp3) = read_wav(&out.path().join("tone.mp3/drums.wav"));
    assert!((mp3[0].len() as i64 - 19_200).abs() <= 2_400, "mp3 length {}", mp3[0].len());
    let (_, mono) = read_wav(&out.path().join("mono/drums.wav"));
    assert_eq!(mono[0].len(), 19_200);
}

#[test]
fn bad_inputs_fail_loudly_and_the_rest_is_still_done() {
    let out = tempfile::tempdir().unwrap();
    let missing = Path::new("/nonexistent/song.wav");
    let result = demixer(&[], &[&fixture("broken.wav"), missing, &fixture("mono.wav")], out.path());
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("broken.wav") && stderr.contains("not a readable audio file"), "{stderr}");
    assert!(stderr.contains("/nonexistent/song.wav") && stderr.contains("cannot open"), "{stderr}");
    assert!(stderr.contains("2 of 3 files failed"), "{stderr}");
    assert!(out.path().join("mono/other.wav").exists(), "the good file was not separated");
}

#[test]
fn low_rates_are_resampled_and_unreachable_rates_and_unknown_options_refused() {
    let dir = tempfile::tempdir().unwrap();
    let slow = dir.path().join("slow.wav");
    let input = write_song(&slow, 4_000, 1, 2.0);
    let result = demixer(&[], &[&slow], &dir.path().join("out"));
    assert!(result.status.success(), "4 kHz is separated at 8 kHz: {}", String::from_utf8_lossy(&result.stderr));
    assert!(max_difference(&sum_of_stems(&dir.path().join("out/slow")), &input) < 1e-4);
    let slowest = dir.path().join("slowest.wav");
    write_song(&slowest, 500, 1, 2.0);
    let result = demixer(&[], &[&slowest], &dir.path().join("out"));
    assert!(!result.status.success());
    assert!(String::from_utf8_lossy(&result.stderr).contains("unsupported sample rate 500"));
    let result = demixer(&["--stems", "kazoo"], &[&slow], &dir.path().join("out"));
    assert!(!result.status.success());
    assert!(String::from_utf8_lossy(&result.stderr).contains("unknown stem 'kazoo'"));
}

fn onnx_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dsp/tests/fixtures/onnx").join(name)
}

/// ONNX Runtime comes from `DEMIXER_ORT_DYLIB` (tests/run.sh sets it).
#[test]
fn an_onnx_model_writes_every_source_it_makes_as_the_python_reference_does() {
    let out = tempfile::tempdir().unwrap();
    let model = onnx_fixture("six.onnx");
    let args = ["--engine", "onnx", "--model", model.to_str().unwrap(), "--device", "cpu"];
    let result = demixer(&args, &[&onnx_fixture("input.wav")], out.path());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    assert!(stderr.contains("six.onnx") && stderr.contains("on CPU"), "says what runs: {stderr}");
    let (_, golden) = read_wav(&onnx_fixture("golden_six.wav"));
    for (i, stem) in ["drums", "bass", "other", "vocals", "guitar", "piano"].iter().enumerate() {
        let (rate, channels) = read_wav(&out.path().join(format!("input/{stem}.wav")));
        assert_eq!(rate, 44_100);
        let difference = max_difference(&channels, &golden[2 * i..2 * i + 2]);
        assert!(difference < 1e-5, "{stem} differs from the reference by {difference}");
    }
}

#[test]
fn onnx_mistakes_are_refused_with_a_message() {
    let out = tempfile::tempdir().unwrap();
    let song = onnx_fixture("input.wav");
    let refused = |args: &[&str]| {
        let result = demixer(args, &[&song], out.path());
        assert!(!result.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&result.stderr).into_owned()
    };
    assert!(refused(&["--engine", "onnx"]).contains("needs --model"));
    assert!(refused(&["--engine", "onnx", "--model", "/nonexistent/model.onnx"]).contains("does not exist"));
    let wrong = onnx_fixture("wrong_input.onnx");
    assert!(refused(&["--engine", "onnx", "--model", wrong.to_str().unwrap()]).contains("no input `mix`"));
    let four = onnx_fixture("four.onnx");
    let message = refused(&["--engine", "onnx", "--model", four.to_str().unwrap(), "--stems", "piano"]);
    assert!(message.contains("makes no piano stem"), "{message}");
    assert!(refused(&["--device", "tpu"]).contains("unknown device 'tpu'"));
}

/// A model whose output is not audio is a failed model: all-NaN output is refused as it loads,
/// before any song is read; output 1e30 too loud fails the song, says why, exits 1, and leaves no
/// stem of it behind (it used to exit 0 with a +600 dBFS stem, or silent ones).
#[test]
fn a_model_whose_output_is_not_audio_fails_loudly_and_writes_no_stems() {
    let out = tempfile::tempdir().unwrap();
    let song = onnx_fixture("input.wav");
    for (model, says) in [("nan.onnx", "NaN"), ("loud.onnx", "dBFS")] {
        let model = onnx_fixture(model);
        let result = demixer(&["--model", model.to_str().unwrap(), "--device", "cpu"], &[&song], out.path());
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
        let written = std::fs::read_dir(out.path().join("input")).map(|d| d.count()).unwrap_or(0);
        assert_eq!(written, 0, "{model:?} left stems behind");
    }
}

/// A model at 44.1 kHz on songs at other rates: what it cannot see comes back in Other, so the
/// stems still sum to the input (they fell short by −22 to −37 dB before).
#[test]
fn an_onnx_model_at_other_rates_keeps_the_stems_summing_to_the_input() {
    let songs = tempfile::tempdir().unwrap();
    let model = onnx_fixture("four.onnx");
    for rate in [8_000, 48_000, 96_000] {
        let song = songs.path().join(format!("song{rate}.wav"));
        let input = write_song(&song, rate, 2, 0.5);
        let out = tempfile::tempdir().unwrap();
        let args = ["--engine", "onnx", "--model", model.to_str().unwrap(), "--device", "cpu"];
        let result = demixer(&args, &[&song], out.path());
        assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
        let sum = sum_of_stems(&out.path().join(format!("song{rate}")));
        let peak = input.iter().flatten().fold(0.0f32, |m, x| m.max(x.abs()));
        let error_db = 20.0 * (max_difference(&sum, &input) / peak).log10();
        eprintln!("{rate} Hz: stems sum to the input within {error_db:.1} dB of its peak");
        assert!(error_db < -80.0, "at {rate} Hz the stems sum to the input only within {error_db:.1} dB");
    }
}

/// Writes interleaved 16-bit PCM as a WAV, with the RIFF and data sizes it is given.
fn pcm16_wav(samples: &[i16], channels: u16, sample_rate: u32, riff_size: u32, data_size: u32) -> Vec<u8> {
    let mut bytes = b"RIFF".to_vec();
    bytes.extend(riff_size.to_le_bytes());
    bytes.extend(b"WAVEfmt ");
    bytes.extend(16u32.to_le_bytes());
    let block_align = 2 * channels;
    for field in [1u16, channels] {
        bytes.extend(field.to_le_bytes());
    }
    bytes.extend(sample_rate.to_le_bytes());
    bytes.extend((sample_rate * u32::from(block_align)).to_le_bytes());
    bytes.extend(block_align.to_le_bytes());
    bytes.extend(16u16.to_le_bytes());
    bytes.extend(b"data");
    bytes.extend(data_size.to_le_bytes());
    bytes.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
    bytes
}

/// 3 s of a stereo chord as interleaved 16-bit samples, and as planar floats.
fn chord_16(sample_rate: u32) -> (Vec<i16>, Vec<Vec<f32>>) {
    let len = 3 * sample_rate as usize;
    let planar: Vec<Vec<f32>> = (0..2)
        .map(|c| {
            (0..len)
                .map(|i| {
                    let t = i as f32 / sample_rate as f32;
                    let x = 0.3 * (std::f32::consts::TAU * 220.0 * (1.0 + c as f32 * 0.5) * t).sin();
                    (x * 32768.0).round() / 32768.0
                })
                .collect()
        })
        .collect();
    let interleaved = (0..len).flat_map(|i| [planar[0][i], planar[1][i]]).map(|x| (x * 32768.0) as i16).collect();
    (interleaved, planar)
}

#[test]
fn a_wav_streamed_without_sizes_is_read_whole_and_a_cut_one_as_far_as_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    let (samples, planar) = chord_16(44_100);
    let piped = dir.path().join("piped.wav");
    std::fs::write(&piped, pcm16_wav(&samples, 2, 44_100, u32::MAX, u32::MAX)).unwrap();
    let result = demixer(&[], &[&piped], &dir.path().join("out"));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success() && !stderr.contains("warning"), "{stderr}");
    assert!(max_difference(&sum_of_stems(&dir.path().join("out/piped")), &planar) < 1e-4);

    // An interrupted recording: the header promises 3 s, the data stops after 1.5 s.
    let cut = dir.path().join("cut.wav");
    let full = pcm16_wav(&samples, 2, 44_100, 36 + 4 * samples.len() as u32 / 2, 2 * samples.len() as u32);
    std::fs::write(&cut, &full[..44 + samples.len()]).unwrap();
    let result = demixer(&[], &[&cut], &dir.path().join("out"));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("ends early: read 1.50 s of 3.00 s"), "{stderr}");
    let half: Vec<Vec<f32>> = planar.iter().map(|c| c[..c.len() / 2].to_vec()).collect();
    assert!(max_difference(&sum_of_stems(&dir.path().join("out/cut")), &half) < 1e-4);
}

#[test]
fn a_flac_cut_short_is_separated_as_far_as_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(example_song()).unwrap();
    let cut = dir.path().join("partial.flac");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let result = demixer(&[], &[&cut], &dir.path().join("out"));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("partial.flac") && stderr.contains("ends early: read"), "{stderr}");
    let (_, drums) = read_wav(&dir.path().join("out/partial/drums.wav"));
    assert!(drums[0].len() > 44_100, "what could be read was separated");
}

/// A WAV of 24-bit samples in 4-byte containers under the plain PCM tag (block align 4 per
/// channel), each container as given.
fn s24_in_32_wav(containers: &[i32], channels: u16, sample_rate: u32) -> Vec<u8> {
    let data_len = 4 * containers.len() as u32;
    let mut bytes = b"RIFF".to_vec();
    bytes.extend((36 + data_len).to_le_bytes());
    bytes.extend(b"WAVEfmt ");
    bytes.extend(16u32.to_le_bytes());
    bytes.extend([1u16, channels].iter().flat_map(|f| f.to_le_bytes()));
    bytes.extend(sample_rate.to_le_bytes());
    bytes.extend((sample_rate * 4 * u32::from(channels)).to_le_bytes());
    bytes.extend([4 * channels, 24].iter().flat_map(|f| f.to_le_bytes()));
    bytes.extend(b"data");
    bytes.extend(data_len.to_le_bytes());
    bytes.extend(containers.iter().flat_map(|c| c.to_le_bytes()));
    bytes
}

/// 3 s of a stereo chord as interleaved 24-bit values, and as planar floats.
fn chord_24(sample_rate: u32) -> (Vec<i32>, Vec<Vec<f32>>) {
    let (_, planar) = chord_16(sample_rate);
    let values: Vec<Vec<i32>> = planar
        .iter()
        .enumerate()
        .map(|(c, ch)| ch.iter().map(|x| (x * 8_388_608.0) as i32 + 37 + c as i32).collect())
        .collect();
    let interleaved = (0..values[0].len()).flat_map(|i| [values[0][i], values[1][i]]).collect();
    let planar = values.iter().map(|ch| ch.iter().map(|&v| v as f32 / 8_388_608.0).collect()).collect();
    (interleaved, planar)
}

/// Separates `containers` written as 24-in-32 and returns the sum of the stems and stderr.
fn separate_s24_in_32(containers: &[i32], name: &str) -> (Option<i32>, Vec<Vec<f32>>, String) {
    let dir = tempfile::tempdir().unwrap();
    let song = dir.path().join(format!("{name}.wav"));
    std::fs::write(&song, s24_in_32_wav(containers, 2, 44_100)).unwrap();
    let result = demixer(&[], &[&song], &dir.path().join("out"));
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    let sum = if result.status.success() { sum_of_stems(&dir.path().join("out").join(name)) } else { Vec::new() };
    (result.status.code(), sum, stderr)
}

/// ALSA's S24_LE: the 24 bits in the low three bytes, sign-extended into the fourth.
#[test]
fn alsa_s24_in_four_byte_containers_decodes_to_its_samples() {
    let (values, planar) = chord_24(44_100);
    let (code, sum, stderr) = separate_s24_in_32(&values, "alsa");
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(sum[0].len(), planar[0].len(), "132300 frames, not 176400");
    assert!(max_difference(&sum, &planar) < 1e-4);
    assert!(!stderr.contains("warning"), "{stderr}");
}

/// The layout the RIFF specification prescribes: the 24 bits in the high three bytes, the low
/// byte zero. It decoded as noise (RMS 0.58 for a chord of RMS 0.21) with exit status 0.
#[test]
fn riff_s24_left_aligned_in_four_byte_containers_decodes_to_its_samples() {
    let (values, planar) = chord_24(44_100);
    let left_aligned: Vec<i32> = values.iter().map(|v| v << 8).collect();
    let (code, sum, stderr) = separate_s24_in_32(&left_aligned, "riff");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(max_difference(&sum, &planar) < 1e-4);
    assert!(!stderr.contains("warning"), "{stderr}");
}

/// 16-bit audio in ALSA's layout has every low byte zero, like the RIFF layout: the data fits
/// both, is read as ALSA's (the RIFF reading would peak below −48 dBFS), and the tool says so.
/// Containers that fit neither layout are refused.
#[test]
fn s24_in_32_that_fits_both_layouts_is_read_as_alsa_with_a_note_and_one_that_fits_neither_is_refused() {
    let (samples, planar) = chord_16(44_100);
    let sixteen_bit: Vec<i32> = samples.iter().map(|&s| i32::from(s) << 8).collect();
    let (code, sum, stderr) = separate_s24_in_32(&sixteen_bit, "both");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(max_difference(&sum, &planar) < 1e-4);
    assert!(stderr.contains("fit both layouts") && stderr.contains("48 dB quieter"), "{stderr}");

    let mut neither = sixteen_bit.clone();
    neither[1000] = 0x1234_5601;
    let (code, _, stderr) = separate_s24_in_32(&neither, "neither");
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("sample 1000 (0x12345601) is neither left-aligned"), "{stderr}");
}

#[test]
fn integer_stems_that_would_clip_are_reported_or_fitted() {
    let dir = tempfile::tempdir().unwrap();
    // A full-scale 100 Hz square wave (its sign flips 200 times a second): its bass stem
    // overshoots full scale (by 1.0 dB; 50 Hz, which this test used before the fitted mask
    // refinement, no longer overshoots).
    let rate = 44_100;
    let square: Vec<f32> = (0..3 * rate).map(|i| if (i * 200 / rate) % 2 == 0 { 1.0 } else { -1.0 }).collect();
    let song = dir.path().join("square.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate as u32,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut writer = hound::WavWriter::create(&song, spec).unwrap();
    square.iter().for_each(|&x| writer.write_sample(x).unwrap());
    writer.finalize().unwrap();

    let result = demixer(&["--format", "i16"], &[&song], &dir.path().join("clipped"));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    assert!(stderr.contains("clipped at full scale") && stderr.contains("--fit"), "says so: {stderr}");

    let result = demixer(&["--format", "i16", "--fit"], &[&song], &dir.path().join("fitted"));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success() && !stderr.contains("clipped"), "{stderr}");
    let db: f32 = stderr.split("scaled by ").nth(1).and_then(|s| s.split(" dB").next()).unwrap().parse().unwrap();
    assert!(db < 0.0, "{stderr}");
    let gain = 10f32.powf(db / 20.0);
    let sum = sum_of_stems(&dir.path().join("fitted/square"));
    let expected: Vec<f32> = square.iter().map(|x| x * gain).collect();
    // Four 16-bit roundings and the two-decimal report of the gain.
    assert!(max_difference(&sum, &[expected]) < 2e-3, "the fitted stems sum to the input times the gain");
}

#[test]
fn a_wav_whose_header_was_never_finished_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (samples, _) = chord_16(8_000);
    let song = dir.path().join("unfinished.wav");
    std::fs::write(&song, pcm16_wav(&samples, 2, 8_000, 0, 0)).unwrap();
    let result = demixer(&[], &[&song], &dir.path().join("out"));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("says it holds no audio, but 96000 bytes follow"), "{stderr}");
}

/// Every file under `dir`, relative to it, sorted.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                walk(root, &path, found);
            } else {
                found.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, dir, &mut found);
    found.sort();
    found
}

/// LameXP#76: `separate vocals/vocals.wav -o .` wrote the vocals stem over its input (20 s became
/// 0.04 s), then reported that the file ended early. An input is never written over, whatever
/// name reaches it: the same path, a symbolic link, a hard link, or a stem that another song of
/// the batch writes.
#[test]
#[cfg(unix)]
fn an_input_is_never_written_over() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("vocals")).unwrap();
    let vocals = root.join("vocals/vocals.wav");
    write_song(&vocals, 8_000, 1, 2.0);
    let original = std::fs::read(&vocals).unwrap();
    let result = demixer(&[], &[&vocals], root);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("vocals/vocals.wav is one of the inputs: it is never written over"), "{stderr}");
    assert_eq!(std::fs::read(&vocals).unwrap(), original, "the input is intact");
    assert_eq!(listing(root), ["vocals/vocals.wav"], "nothing else was written");

    // By a link: song.wav's folder holds a symbolic link to it and a hard link to it.
    let song = root.join("song.wav");
    write_song(&song, 8_000, 1, 2.0);
    std::fs::create_dir(root.join("out")).unwrap();
    std::fs::create_dir(root.join("out/song")).unwrap();
    for (linked, hard) in [("bass.wav", false), ("other.wav", true)] {
        let link = root.join("out/song").join(linked);
        if hard {
            std::fs::hard_link(&song, &link).unwrap();
        } else {
            std::os::unix::fs::symlink(&song, &link).unwrap();
        }
        let result = demixer(&["--overwrite"], &[&song], &root.join("out"));
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&format!("{linked} is one of the inputs")), "{stderr}");
        std::fs::remove_file(&link).unwrap();
    }
    let (_, samples) = read_wav(&song);
    assert_eq!(samples[0].len(), 16_000, "song.wav is intact");

    // Within a batch: song `a` would write out/a/drums.wav, which is the batch's second input.
    std::fs::create_dir_all(root.join("batch/a")).unwrap();
    let a = root.join("batch/a.wav");
    let drums = root.join("batch/a/drums.wav");
    write_song(&a, 8_000, 1, 1.0);
    write_song(&drums, 8_000, 1, 1.0);
    let original = std::fs::read(&drums).unwrap();
    let result = demixer(&[], &[&a, &drums], &root.join("batch"));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("a/drums.wav is one of the inputs") && stderr.contains("1 of 2 files failed"), "{stderr}");
    assert_eq!(std::fs::read(&drums).unwrap(), original);
    assert!(root.join("batch/drums/vocals.wav").exists(), "the other song was separated");
}

/// `separate . -o .` run twice read its own stems as songs (4 more folders) while writing over
/// them. The tool's own stems are not taken from folders, and the song's folder is kept unless
/// --overwrite says to replace it.
#[test]
fn separating_a_folder_into_itself_twice_never_separates_its_stems() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write_song(&root.join("song.wav"), 8_000, 1, 1.0);
    let stems: Vec<String> = STEMS.iter().map(|s| format!("song/{s}.wav")).collect();
    let expected: Vec<String> = stems.iter().cloned().chain(["song.wav".to_string()]).collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    let first = demixer(&[], &[root], root);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert_eq!(listing(root), expected_sorted);
    let before: Vec<Vec<u8>> = stems.iter().map(|s| std::fs::read(root.join(s)).unwrap()).collect();

    let second = demixer(&[], &[root], root);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("4 stems written by demixer were found in the folders and left out"), "{stderr}");
    assert!(
        stderr.contains("holds stems already (drums.wav, bass.wav, other.wav, vocals.wav): kept; --overwrite"),
        "{stderr}"
    );
    assert!(stderr.contains("1 of 1 files failed"), "only song.wav was taken: {stderr}");
    assert_eq!(listing(root), expected_sorted);
    let after: Vec<Vec<u8>> = stems.iter().map(|s| std::fs::read(root.join(s)).unwrap()).collect();
    assert!(before == after, "the stems are untouched");

    let third = demixer(&["--overwrite"], &[root], root);
    assert!(third.status.success(), "{}", String::from_utf8_lossy(&third.stderr));
    assert_eq!(listing(root), expected_sorted);
}

/// A second song of the same name mixed into the first one's folder: its drums, bass and other
/// beside the first song's vocals. The folder is kept; with --overwrite it holds the second
/// song's stems only.
#[test]
fn a_folder_that_holds_stems_is_kept_or_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("x")).unwrap();
    std::fs::create_dir_all(root.join("y")).unwrap();
    write_song(&root.join("x/song.wav"), 8_000, 1, 2.0);
    write_song(&root.join("y/song.wav"), 8_000, 1, 1.0);
    let out = root.join("out");
    assert!(demixer(&[], &[&root.join("x/song.wav")], &out).status.success());
    let first = listing(&out);
    let vocals = std::fs::read(out.join("song/vocals.wav")).unwrap();

    let result = demixer(&["--stems", "drums,bass,other"], &[&root.join("y/song.wav")], &out);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("holds stems already"), "{stderr}");
    assert_eq!(listing(&out), first);
    assert_eq!(std::fs::read(out.join("song/vocals.wav")).unwrap(), vocals);

    let result = demixer(&["--stems", "drums,bass,other", "--overwrite"], &[&root.join("y/song.wav")], &out);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    assert_eq!(listing(&out), ["song/bass.wav", "song/drums.wav", "song/other.wav"], "the old vocals are gone");
    for stem in ["drums", "bass", "other"] {
        let (_, channels) = read_wav(&out.join(format!("song/{stem}.wav")));
        assert_eq!(channels[0].len(), 8_000, "{stem} is the second song's");
    }
}

/// One symbolic link back up the tree separated the same song 41 times; two ran forever. Every
/// real folder and file is visited once, whatever links lead to it.
#[test]
#[cfg(unix)]
fn folders_are_walked_through_links_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("in/x")).unwrap();
    write_song(&root.join("in/song.wav"), 8_000, 1, 0.5);
    std::os::unix::fs::symlink("..", root.join("in/loop")).unwrap();
    std::os::unix::fs::symlink("../..", root.join("in/x/up")).unwrap();
    std::os::unix::fs::symlink("../x", root.join("in/x/again")).unwrap();
    std::os::unix::fs::symlink("song.wav", root.join("in/alias.wav")).unwrap();
    let out = root.join("out");
    let result = demixer(&[], &[&root.join("in"), &root.join("in/x/up")], &out);
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    assert_eq!(stdout.lines().count(), 1, "one song: {stdout}");
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
}

/// An interrupted run (Ctrl-C, SIGTERM) left stems whose headers said 0 frames under their final
/// names. Stems are written under temporary names that the interruption removes.
#[test]
#[cfg(unix)]
fn an_interrupted_run_leaves_no_unfinished_stem() {
    let dir = tempfile::tempdir().unwrap();
    let song = dir.path().join("long.wav");
    write_song(&song, 8_000, 1, 600.0);
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let out = dir.path().join(format!("out{signal}"));
        let child = Command::new(env!("CARGO_BIN_EXE_demixer"))
            .arg("separate")
            .arg(&song)
            .arg("-o")
            .arg(&out)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let song_dir = out.join("long");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let partial = |dir: &Path| {
            std::fs::read_dir(dir)
                .is_ok_and(|mut e| e.any(|e| e.unwrap().file_name().to_string_lossy().ends_with(".partial")))
        };
        while !partial(&song_dir) {
            assert!(std::time::Instant::now() < deadline, "no stem is being written after 60 s");
            std::thread::yield_now();
        }
        // SAFETY: sending a signal to the child process started above.
        unsafe { libc::kill(child.id() as i32, signal) };
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(130), "{stderr}");
        // The four stems' files are created one after the other: the signal may come between.
        let removed =
            stderr.split("interrupted: ").nth(1).and_then(|rest| rest.split(' ').next()?.parse::<usize>().ok());
        assert!(removed.is_some_and(|n| (1..=4).contains(&n)), "{stderr}");
        assert!(listing(&out).is_empty(), "left behind: {:?}", listing(&out));
    }
}

/// RF64 (EBU Tech 3306) and Sony Wave64, the containers for files past 4 GiB, were refused.
#[test]
fn rf64_and_wave64_inputs_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let (samples, planar) = chord_16(8_000);
    let plain = pcm16_wav(&samples, 2, 8_000, 36 + 2 * samples.len() as u32, 2 * samples.len() as u32);
    let (fmt, data) = (&plain[20..36], &plain[44..]);
    // RF64: a ds64 chunk with the sizes, 0xFFFFFFFF where RIFF has them.
    let mut rf64 = b"RF64\xFF\xFF\xFF\xFFWAVEds64".to_vec();
    rf64.extend(28u32.to_le_bytes());
    for size in [(plain.len() + 36 - 8) as u64, data.len() as u64, (samples.len() / 2) as u64] {
        rf64.extend(size.to_le_bytes());
    }
    rf64.extend(0u32.to_le_bytes());
    rf64.extend(b"fmt \x10\0\0\0");
    rf64.extend(fmt);
    rf64.extend(b"data\xFF\xFF\xFF\xFF");
    rf64.extend(data);
    // Wave64: GUIDs for ids, 64-bit sizes that count the 24-byte chunk header, 8-byte alignment.
    let guid = |id: &[u8; 4]| {
        let mut g = id.to_vec();
        g.extend([0xF3, 0xAC, 0xD3, 0x11, 0x8C, 0xD1, 0x00, 0xC0, 0x4F, 0x8E, 0xDB, 0x8A]);
        g
    };
    let mut w64 = b"riff\x2E\x91\xCF\x11\xA5\xD6\x28\xDB\x04\xC1\x00\x00".to_vec();
    w64.extend((40 + 24 + 16 + 24 + data.len() as u64).to_le_bytes());
    w64.extend(guid(b"wave"));
    w64.extend(guid(b"fmt "));
    w64.extend((24 + 16u64).to_le_bytes());
    w64.extend(fmt);
    w64.extend(guid(b"data"));
    w64.extend((24 + data.len() as u64).to_le_bytes());
    w64.extend(data);
    for (name, bytes) in [("rf64.wav", rf64), ("sony.w64", w64)] {
        let song = dir.path().join(name);
        std::fs::write(&song, bytes).unwrap();
        let result = demixer(&[], &[&song], &dir.path().join("out"));
        assert!(result.status.success(), "{name}: {}", String::from_utf8_lossy(&result.stderr));
        let folder = Path::new(name).file_stem().unwrap();
        assert!(max_difference(&sum_of_stems(&dir.path().join("out").join(folder)), &planar) < 1e-4, "{name}");
    }
}

/// A folder given as the model was reported as "does not exist" (a path) or as a model not
/// installed (a bare name): it is said to be a folder, with the files in it that could be meant.
#[test]
fn a_folder_given_as_the_model_is_said_to_be_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("mymodel")).unwrap();
    std::fs::write(dir.path().join("mymodel/model.onnx"), b"x").unwrap();
    let song = dir.path().join("song.wav");
    write_song(&song, 8_000, 1, 0.5);
    for model in [dir.path().join("mymodel").to_str().unwrap(), "mymodel"] {
        let result = Command::new(env!("CARGO_BIN_EXE_demixer"))
            .current_dir(dir.path())
            .args(["separate", "song.wav", "--model", model])
            .env("DEMIXER_MODELS_DIR", dir.path().join("library"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("is a folder; a model is a .onnx file") && stderr.contains("holds model.onnx"),
            "{stderr}"
        );
    }
}

/// `--jobs 100000` spawned threads for half an hour on a two-file batch (on 2 cores); 0 is no
/// number of jobs.
#[test]
fn jobs_are_at_most_one_per_file_and_core_and_at_least_one() {
    let dir = tempfile::tempdir().unwrap();
    let songs: Vec<PathBuf> = (0..2).map(|i| dir.path().join(format!("s{i}.wav"))).collect();
    songs.iter().for_each(|s| drop(write_song(s, 8_000, 1, 0.5)));
    let inputs: Vec<&Path> = songs.iter().map(PathBuf::as_path).collect();
    let result = demixer(&["--jobs", "100000"], &inputs, &dir.path().join("out"));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    let cores = std::thread::available_parallelism().unwrap().get();
    let jobs = cores.min(2);
    assert!(stderr.contains(&format!("--jobs 100000: {jobs} at a time (2 files, {cores} cores)")), "{stderr}");
    let result = demixer(&["--jobs", "0"], &inputs, &dir.path().join("out0"));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("invalid value '0' for '--jobs"), "{stderr}");
}

/// "Café" typed (NFC) and as macOS lists it (NFD) gave two folders for one song: names are
/// composed, and an earlier folder is found under either spelling.
#[test]
fn two_spellings_of_one_song_name_are_one_folder() {
    let dir = tempfile::tempdir().unwrap();
    let composed = dir.path().join("Caf\u{e9}.wav");
    let decomposed = dir.path().join("sub/Cafe\u{301}.wav");
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    write_song(&composed, 8_000, 1, 0.5);
    write_song(&decomposed, 8_000, 1, 0.5);
    let out = dir.path().join("out");
    assert!(demixer(&[], &[&decomposed], &out).status.success());
    assert_eq!(listing(&out)[0], "Caf\u{e9}/bass.wav", "the folder's name is composed");
    let result = demixer(&[], &[&composed], &out);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(1), "the same folder: {stderr}");
    assert!(stderr.contains("holds stems already"), "{stderr}");
}
