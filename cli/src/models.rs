//! `demixer models`: the catalog of published models, verified downloads, and the library of
//! installed models that `--model NAME` and the plugin's model menu use.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use demixer_dsp::onnx::OnnxError;
use demixer_dsp::onnx::inspect::{Inspection, LATENCY_RATES, Layout, inspect, segment_latency};
use demixer_dsp::onnx::{OnnxConfig, runtime};
use demixer_dsp::{EngineKind, Stem};
use demixer_models::catalog::{Catalog, CatalogEntry, mirror};
use demixer_models::digest::{Hasher, file_sha256};
use demixer_models::install::{self, Checked, Outcome, Verified};
use demixer_models::library::{Installed, Library, LibraryError, ModelKind, check_name};
use demixer_models::runtime::ORT_VERSION;
use demixer_models::runtime::download as runtime_download;
use indicatif::{ProgressBar, ProgressStyle};

/// `demixer models ...`.
#[derive(Subcommand)]
pub enum ModelsCommand {
    /// The catalog of published models, what is installed, and where ONNX Runtime was found.
    List,
    /// Download a catalog model into the library, checking its size and SHA-256 first.
    Download {
        /// The catalog name (see `demixer models list`).
        name: String,
        /// Give up when the server sends nothing for this many seconds.
        #[arg(long, default_value_t = 30.0)]
        stall_timeout: f64,
    },
    /// Check a model file (`.onnx`, or a bag manifest `.json`) against Demixer's contract and put
    /// it in the library.
    Add {
        /// The model file or bag manifest.
        file: PathBuf,
        /// Its name in the library (default: the file name without extension).
        #[arg(long)]
        name: Option<String>,
    },
    /// What a model is: inputs and outputs, sources, rate, segment, latency, parameters, SHA-256.
    Info {
        /// A model file, or the name of an installed model.
        model: String,
    },
    /// Where ONNX Runtime is found and what it runs on; with --download, install it from PyPI's
    /// official wheel (checked against PyPI's SHA-256) without Python.
    Runtime {
        /// Download and install ONNX Runtime into the library.
        #[arg(long)]
        download: bool,
        /// With --download: the CUDA build (`onnxruntime-gpu`; needs CUDA 13 and cuDNN 9).
        #[arg(long, requires = "download")]
        gpu: bool,
        /// Give up when the server sends nothing for this many seconds.
        #[arg(long, default_value_t = 30.0)]
        stall_timeout: f64,
    },
    /// Forget the SHA-256 pinned by a model's first download (when its publisher changed the file).
    Unpin {
        /// The catalog name.
        name: String,
    },
    /// Remove an installed model (its pinned SHA-256 stays, to check a later download).
    Remove {
        /// The installed model's name.
        name: String,
    },
}

/// Runs a `models` command; `ort` is a user-chosen ONNX Runtime library.
pub fn run(command: ModelsCommand, ort: Option<PathBuf>) -> Result<()> {
    let library = Library::open()?;
    let stall = |seconds: f64| {
        Duration::try_from_secs_f64(seconds)
            .ok()
            .filter(|d| !d.is_zero() && seconds <= 86_400.0)
            .context("--stall-timeout must be more than 0 and at most 86400 seconds")
    };
    match command {
        ModelsCommand::List => list(&library, ort.as_deref()),
        ModelsCommand::Download { name, stall_timeout } => fetch(&library, &name, stall(stall_timeout)?, ort),
        ModelsCommand::Runtime { download, gpu, stall_timeout } => {
            if download {
                install_runtime(&library, gpu, stall(stall_timeout)?)?;
            }
            println!("{}", runtime_report(&library, ort.as_deref()));
            Ok(())
        }
        ModelsCommand::Add { file, name } => add(&library, &file, name, ort),
        ModelsCommand::Info { model } => info(&library, &model, ort),
        ModelsCommand::Remove { name } => {
            let removed = library.remove(&name)?;
            println!("Removed {name} ({})", removed.display());
            Ok(())
        }
        ModelsCommand::Unpin { name } => {
            match library.unpin(&name)? {
                Some(sha) => println!("Forgot the pinned SHA-256 {sha} of {name}"),
                None => println!("{name} has no pinned SHA-256"),
            }
            Ok(())
        }
    }
}

/// A progress bar for a download of `what`.
fn progress_bar(what: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}  {msg}").unwrap());
    bar.set_message(what.to_string());
    bar
}

fn install_runtime(library: &Library, gpu: bool, stall: Duration) -> Result<()> {
    let bar = progress_bar("ONNX Runtime");
    eprintln!("Downloading ONNX Runtime {ORT_VERSION} from PyPI's official wheel");
    let installed = runtime_download::install(library, gpu, stall, &mut |received, total| {
        if let Some(total) = total {
            bar.set_length(total);
        }
        bar.set_position(received);
    });
    bar.finish_and_clear();
    let installed = installed.map_err(|e| anyhow!("{e}; nothing was installed"))?;
    println!("Installed ONNX Runtime: {}", installed.display());
    println!(
        "(a path set with --ort or in the plugin, DEMIXER_ORT_DYLIB, ORT_DYLIB_PATH and a copy next to the program come first)"
    );
    Ok(())
}

/// Where ONNX Runtime is and what it can run on, in a few lines.
fn runtime_report(library: &Library, ort: Option<&Path>) -> String {
    match runtime::load(ort, library.installed_runtime().as_deref()) {
        Ok(found) => {
            let providers: Vec<String> = runtime::providers(found)
                .into_iter()
                .map(|p| match p.usable {
                    Ok(()) => format!("{}: yes", p.name),
                    Err(why) => format!("{}: no ({why})", p.name),
                })
                .collect();
            format!("ONNX Runtime {} from {}\n  {}", found.version, found.path.display(), providers.join("\n  "))
        }
        Err(missing) => missing.to_string(),
    }
}

fn list(library: &Library, ort: Option<&Path>) -> Result<()> {
    println!("{}\n", runtime_report(library, ort));
    let (installed, problems) = library.list();
    println!("Installed in {}:", library.root().display());
    if installed.is_empty() {
        println!("  (none)");
    }
    for model in &installed {
        println!("  {:<16} {:<9} {}  sha256 {}", model.name, model.kind, model.summary, short(&model.sha256));
    }
    for problem in problems {
        println!("  problem: {problem}");
    }
    let catalog = Catalog::load()?;
    println!("\nCatalog ({}):", catalog.origin);
    for entry in &catalog.models {
        let state = if installed.iter().any(|m| m.name == entry.name) { "installed" } else { "" };
        let hash = match (&entry.sha256, library.pin(&entry.name)?) {
            (Some(sha), _) => format!("sha256 {}", short(sha)),
            _ if entry.published_checksum() => "sha256 from the package index".into(),
            (None, Some(pin)) => format!("sha256 {} (pinned by the first download)", short(&pin)),
            (None, None) => "sha256 pinned on first download".into(),
        };
        let latency = catalog_latency(entry);
        println!(
            "  {:<16} {:<9} {} at {} Hz{latency}, {}, {hash}, {}  {state}",
            entry.name,
            entry.kind,
            entry.stems.join("/"),
            entry.sample_rate,
            entry.size_text(),
            entry.licence
        );
        println!("  {:<16} source: {}", "", entry.source);
    }
    Ok(())
}

/// ", latency 13.65 s at 44.1 kHz" for a catalog entry: what the engine will report, computed
/// from its segment the way `demixer models info` does for a file.
fn catalog_latency(entry: &CatalogEntry) -> String {
    let Some(segment) = entry.segment else { return String::new() };
    let sources: Vec<Stem> = entry.stems.iter().filter_map(|s| Stem::from_name(s)).collect();
    let rate = LATENCY_RATES[0];
    segment_latency(segment as usize, &sources, entry.sample_rate as usize, rate).map_or(String::new(), |samples| {
        format!(", latency {:.2} s at {:.1} kHz", samples as f64 / rate as f64, rate as f64 / 1000.0)
    })
}

/// Summary line of an inspected model, for the library's record and menus: the stems it gives
/// (and which the model leaves to HPSS), its rate and latency (live and offline where they
/// differ).
fn summary(inspection: &Inspection) -> String {
    let names = |stems: &[Stem]| stems.iter().map(|s| s.name()).collect::<Vec<_>>().join("/");
    let stems = if inspection.stems == inspection.sources {
        names(&inspection.sources)
    } else {
        let own: Vec<Stem> = inspection.sources.iter().copied().filter(|s| inspection.stems.contains(s)).collect();
        format!("{} ({} by the model, the rest by HPSS)", names(&inspection.stems), names(&own))
    };
    let at = |latencies: &[(usize, usize)]| {
        latencies.first().map(|&(rate, samples)| (seconds(samples as f64 / rate as f64), rate as f64 / 1000.0))
    };
    let latency = match (&inspection.layout, at(&inspection.latencies)) {
        (Layout::Spectrogram { live_latencies, .. }, Some((offline, rate))) => {
            let live = at(live_latencies).map_or(String::new(), |(live, _)| format!("{live} live, "));
            format!(", latency {live}{offline} offline at {rate:.1} kHz")
        }
        (_, Some((latency, rate))) => format!(", latency {latency} at {rate:.1} kHz"),
        (_, None) => String::new(),
    };
    format!("{stems} at {} Hz{latency}", inspection.sample_rate)
}

/// The first 12 characters of a digest, for listings.
fn short(sha256: &str) -> String {
    sha256.chars().take(12).collect()
}

/// "13.65 s" or "5.8 ms".
fn seconds(value: f64) -> String {
    if value >= 1.0 { format!("{value:.2} s") } else { format!("{:.1} ms", value * 1000.0) }
}

/// The library's kind for an inspected model.
fn kind_of(inspection: &Inspection) -> ModelKind {
    match inspection.kind {
        EngineKind::StreamingModel => ModelKind::Streaming,
        EngineKind::SpectrogramModel => ModelKind::Spectrogram,
        _ => ModelKind::Segment,
    }
}

fn config(library: &Library, model: &Path, ort: Option<PathBuf>) -> OnnxConfig {
    let installed_runtime = library.installed_runtime();
    OnnxConfig { model: model.to_path_buf(), runtime: ort, installed_runtime, ..OnnxConfig::default() }
}

fn fetch(library: &Library, name: &str, stall: Duration, ort: Option<PathBuf>) -> Result<()> {
    let catalog = Catalog::load()?;
    let Some(entry) = catalog.get(name) else {
        let names: Vec<&str> = catalog.models.iter().map(|e| e.name.as_str()).collect();
        bail!("'{name}' is not in the catalog ({}); known: {}", catalog.origin, names.join(", "));
    };
    let bar = progress_bar(&entry.file);
    let mut progress = |received, total: Option<u64>| {
        if let Some(total) = total {
            bar.set_length(total);
        }
        bar.set_position(received);
    };
    // What arrived must be a model that fits its contract before it is kept (and pinned).
    let check = |file: &Path| match runtime::load(ort.as_deref(), library.installed_runtime().as_deref()) {
        Ok(_) => inspect(&config(library, file, ort.clone()))
            .map(|inspection| Checked::Fits { kind: kind_of(&inspection), summary: summary(&inspection) })
            .map_err(|e| e.to_string()),
        Err(missing) => Ok(Checked::Unchecked { why: missing.to_string() }),
    };
    match &entry.checkpoint {
        Some(_) => eprintln!("Downloading the {name} checkpoint ({}) and converting it to ONNX", entry.url),
        None => eprintln!("Downloading {name} from {}", entry.download_url(mirror().as_deref())),
    }
    let outcome = install::fetch(library, entry, mirror().as_deref(), stall, &mut progress, &check);
    bar.finish_and_clear();
    let (model, downloaded, verified, converted_from, concurrent, unchecked) =
        match outcome.map_err(|e| anyhow!("{e}; nothing was installed"))? {
            Outcome::Already(installed) => {
                println!("{name} is installed already: {}", installed.path().display());
                return Ok(());
            }
            Outcome::Installed { model, downloaded, verified, converted_from, concurrent, unchecked } => {
                (model, downloaded, verified, converted_from, concurrent, unchecked)
            }
        };
    if let Some(why) = &unchecked {
        eprintln!("warning: not checked against Demixer's contract and not pinned: {why}");
    }
    if let Some(source) = &converted_from {
        println!("Converted {source} (SHA-256 {downloaded}) to {}", entry.file);
    }
    if concurrent {
        println!("{name} was installed meanwhile (by another download), with the same SHA-256");
        return Ok(());
    }
    println!(
        "SHA-256 {downloaded} {}",
        match verified {
            Verified::Catalog => "matches the catalog",
            Verified::PackageIndex => "matches the package index's",
            Verified::Pin => "matches the one pinned by the first download",
            Verified::PinnedNow => "(the publisher gives none: pinned now; later downloads must match it)",
            Verified::Unpinned => "(not pinned: the model could not be checked)",
        }
    );
    println!("Installed {name}: {} ({:.1} MiB)", model.path().display(), model.size as f64 / (1 << 20) as f64);
    println!("Use it: demixer separate song.flac --model {name}");
    Ok(())
}

/// SHA-256 of a model's files: the file's own, or for a bag, of its `sha256sum`-style listing.
fn model_sha256(inspection: &Inspection, file: &Path) -> Result<String> {
    if inspection.files.len() == 1 && inspection.files[0] == file {
        return Ok(file_sha256(file).with_context(|| format!("cannot read {}", file.display()))?.0);
    }
    let mut listing = Hasher::default();
    for member in &inspection.files {
        let (sha, _) = file_sha256(member).with_context(|| format!("cannot read {}", member.display()))?;
        let name = member.file_name().unwrap_or_default().to_string_lossy();
        listing.update(format!("{sha}  {name}\n").as_bytes());
    }
    Ok(listing.hex())
}

/// Copies `from` into `dir` under its own name; returns the bytes copied.
fn copy_into(from: &Path, dir: &Path) -> Result<u64> {
    let to = dir.join(from.file_name().context("a model file has a name")?);
    std::fs::copy(from, &to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))
}

fn add(library: &Library, file: &Path, name: Option<String>, ort: Option<PathBuf>) -> Result<()> {
    if !file.is_file() {
        bail!("{} is not a file", file.display());
    }
    let name = name.unwrap_or_else(|| file.file_stem().unwrap_or_default().to_string_lossy().into_owned());
    check_name(&name).map_err(|why| anyhow!("{why}; choose one with --name"))?;
    if file.file_name().is_some_and(|f| f == demixer_models::library::RECORD) {
        bail!("refused: {} is Demixer's own record, not a model", file.display());
    }
    library.check_free(&name).map_err(|e| anyhow!("{e}, or choose another --name"))?;
    let inspection = inspect(&config(library, file, ort)).map_err(|e| match e {
        OnnxError::Runtime(missing) => anyhow!("cannot check the model: {missing}"),
        other => anyhow!("refused: {other}"),
    })?;
    let sha256 = model_sha256(&inspection, file)?;
    let known = Catalog::load()?.get(&name).and_then(|entry| entry.sha256.clone()).or(library.pin(&name)?);
    if let Some(known) = known
        && !known.eq_ignore_ascii_case(&sha256)
    {
        bail!(
            "refused: {} has SHA-256 {sha256}, but the model called '{name}' has {known}; add it under another --name",
            file.display()
        );
    }
    let staging = library.stage(&name)?;
    let manifest_dir = file.parent().unwrap_or(Path::new("."));
    let mut size = 0;
    let mut copied = vec![file.to_path_buf()];
    for member in &inspection.files {
        let sidecar = demixer_dsp::onnx::sidecar_path(member);
        let external = PathBuf::from(format!("{}.data", member.display()));
        copied.extend([member.clone(), sidecar, external].into_iter().filter(|p| p.is_file()));
        if member.parent() != Some(manifest_dir) && member != file {
            bail!(
                "refused: the bag member {} is not in the manifest's folder {}: put the models beside the manifest",
                member.display(),
                manifest_dir.display()
            );
        }
    }
    copied.sort();
    copied.dedup();
    for path in &copied {
        size += copy_into(path, staging.dir())?;
    }
    let record = Installed {
        name: name.clone(),
        kind: kind_of(&inspection),
        file: file.file_name().unwrap_or_default().to_string_lossy().into_owned(),
        sha256,
        size,
        summary: summary(&inspection),
        source: format!("added from {}", file.display()),
        dir: PathBuf::new(),
    };
    let installed = staging.commit(record)?;
    println!("Added {name}: {} ({}), {}", installed.path().display(), installed.kind, installed.summary);
    Ok(())
}

fn info(library: &Library, model: &str, ort: Option<PathBuf>) -> Result<()> {
    let resolved = library.resolve(model).map_err(not_installed_hint)?;
    let inspection = inspect(&config(library, &resolved.path, ort))?;
    println!("Model: {}", resolved.path.display());
    if let Some(installed) = &resolved.installed {
        println!("Library name: {} ({})", installed.name, installed.source);
        let licence = installed.dir.join("LICENSE");
        if let Some(owner) = std::fs::read_to_string(&licence)
            .ok()
            .and_then(|text| text.lines().find(|line| line.starts_with("Copyright")).map(str::to_string))
        {
            println!("Licence: {owner}; the notice is {}", licence.display());
        }
    }
    match &inspection.layout {
        Layout::Segment { segment } => {
            println!("Kind: segment (Demucs-style: whole segments, overlap-add)");
            let duration = *segment as f64 / inspection.sample_rate as f64;
            println!("Segment: {segment} samples ({duration:.3} s)");
        }
        Layout::Streaming { hop, states, pairing, sum_to_input } => {
            println!("Kind: streaming (one hop at a time, recurrent states)");
            println!("Hop: {hop} samples ({:.2} ms)", *hop as f64 * 1000.0 / inspection.sample_rate as f64);
            println!("States: {} (paired {pairing})", states.len());
            for state in states {
                println!("  {} -> {} {:?}", state.input, state.output, state.shape);
            }
            if *sum_to_input {
                println!("Sum to input: the last source is the delayed input minus the others");
            }
        }
        Layout::Spectrogram { spec, frames, offline, live, live_latencies } => {
            println!(
                "Kind: spectrogram (magnitude STFT in, per-source estimates out; Demixer masks and resynthesises)"
            );
            println!(
                "STFT: {} samples every {} (periodic Hann), {} bins to the model ({:.0} Hz and up are left out)",
                spec.n_fft,
                spec.hop,
                spec.bins,
                spec.bins as f64 * inspection.sample_rate as f64 / spec.n_fft as f64
            );
            println!("Chunks: {frames} frames ({:.2} s)", (*frames * spec.hop) as f64 / inspection.sample_rate as f64);
            for (mode, chunking, latencies) in
                [("offline", offline, &inspection.latencies), ("live", live, live_latencies)]
            {
                let at: Vec<String> = latencies
                    .iter()
                    .map(|&(rate, samples)| {
                        format!("{samples} samples ({}) at {rate} Hz", seconds(samples as f64 / rate as f64))
                    })
                    .collect();
                println!(
                    "Latency {mode} (model runs on {} frames, masks {}, looks {} ahead): {}",
                    chunking.window,
                    chunking.emit,
                    chunking.lookahead,
                    at.join(", ")
                );
            }
        }
    }
    for file in inspection.files.iter().skip(usize::from(inspection.files.len() == 1)) {
        println!("Bag member: {}", file.display());
    }
    for port in &inspection.inputs {
        println!("Input: {} {}", port.name, port.shape);
    }
    for port in &inspection.outputs {
        println!("Output: {} {}", port.name, port.shape);
    }
    let stems: Vec<&str> = inspection.sources.iter().map(|s| s.name()).collect();
    println!("Sources: {}", stems.join(", "));
    if inspection.stems != inspection.sources {
        let written: Vec<&str> = inspection.stems.iter().map(|s| s.name()).collect();
        println!("Stems: {} (HPSS splits what the model leaves into the stems it lacks)", written.join(", "));
    }
    println!("Sample rate: {} Hz", inspection.sample_rate);
    for &(rate, samples) in &inspection.latencies {
        let ms = samples as f64 * 1000.0 / rate as f64;
        println!("Latency at {rate} Hz: {samples} samples ({ms:.1} ms), plus the plugin's worker margin");
    }
    match inspection.parameters {
        Some(count) => println!("Parameters: {count} ({:.2} M)", count as f64 / 1e6),
        None => println!("Parameters: unknown (the file could not be read as ONNX protobuf)"),
    }
    let sha256 = model_sha256(&inspection, &resolved.path)?;
    let check = match &resolved.installed {
        Some(installed) if installed.sha256 == sha256 => " (matches the library's record)",
        Some(_) => " (DIFFERS from the library's record: the file changed since it was installed)",
        None => "",
    };
    println!("SHA-256: {sha256}{check}");
    Ok(())
}

/// A `NotInstalled` error with the command that gets the model, where the catalog has it.
pub fn not_installed_hint(error: LibraryError) -> anyhow::Error {
    let LibraryError::NotInstalled { name, .. } = &error else { return error.into() };
    match Catalog::load().ok().and_then(|catalog| catalog.get(name).cloned()) {
        Some(_) => anyhow!("{error}; get it with `demixer models download {name}`"),
        None => anyhow!("{error}; see `demixer models list`, or give a model file's path"),
    }
}
