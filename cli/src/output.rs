//! Writing a song's stems so that no file is lost and no stem looks complete when it is not.
//!
//! - Each stem is written under a temporary name in the song's folder
//!   (`.<stem>.wav.<pid>-<n>.partial`, which no folder walk takes for a song) and renamed to
//!   `<stem>.wav` when every stem of the song is complete; a failed song leaves none.
//! - On SIGINT (Ctrl-C), SIGTERM or SIGHUP the temporary files are removed before the tool exits
//!   ([`clean_up_on_interrupt`]); the songs already renamed into place are complete.
//! - A stem file that is one of the inputs (by any name: a link, `..`) is never written over.
//! - A folder that holds stems already (an earlier run, another song of the same name) is kept
//!   and the song refused, unless `--overwrite`: then the song's stems replace the folder's set,
//!   and the stems of the old set that the new one does not write are removed, so a folder never
//!   mixes two separations.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use anyhow::{Context, Result, bail};
use demixer_dsp::Stem;

use crate::inputs::Identities;

/// The exit status after an interruption (128 + SIGINT, as shells report Ctrl-C).
const INTERRUPTED: i32 = 130;

/// Stem files being written under temporary names, and whether the process was interrupted.
static UNFINISHED: Mutex<Unfinished> = Mutex::new(Unfinished { paths: Vec::new(), interrupted: false });

struct Unfinished {
    paths: Vec<PathBuf>,
    interrupted: bool,
}

fn unfinished() -> MutexGuard<'static, Unfinished> {
    UNFINISHED.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Makes SIGINT (Ctrl-C), SIGTERM and SIGHUP remove the stem files being written and exit with
/// status 130. The handler runs on a thread of its own (the `ctrlc` crate), not in the signal.
///
/// # Errors
/// The handler cannot be installed.
pub fn clean_up_on_interrupt() -> Result<()> {
    ctrlc::set_handler(|| {
        let removed = {
            let mut unfinished = unfinished();
            unfinished.interrupted = true;
            std::mem::take(&mut unfinished.paths).iter().filter(|p| std::fs::remove_file(p).is_ok()).count()
        };
        eprintln!("\ninterrupted: {removed} unfinished stem files removed; the stems in place are complete");
        std::process::exit(INTERRUPTED);
    })
    .context("cannot handle Ctrl-C")
}

/// `<dir>/<stem>.wav`.
fn stem_path(dir: &Path, stem: Stem) -> PathBuf {
    dir.join(format!("{stem}.wav"))
}

/// A song's stems being written into its folder; see the module's description. Dropped before
/// [`SongStems::commit`], it removes what it wrote.
pub struct SongStems {
    dir: PathBuf,
    /// Per stem written: its temporary file and its final name.
    files: Vec<(PathBuf, PathBuf)>,
    /// Stems of an earlier separation that this one does not write, removed once it is in place.
    stale: Vec<PathBuf>,
}

impl SongStems {
    /// Creates `dir` for the stems `stems` and applies the overwrite policy.
    ///
    /// # Errors
    /// A stem file in `dir` is one of `inputs`; `dir` holds stems already and `overwrite` is not
    /// set; `dir` cannot be created.
    pub fn prepare(dir: &Path, stems: &[Stem], overwrite: bool, inputs: &Identities) -> Result<SongStems> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let existing: Vec<PathBuf> =
            Stem::KNOWN.iter().map(|&s| stem_path(dir, s)).filter(|p| p.symlink_metadata().is_ok()).collect();
        if let Some(input) = existing.iter().find(|p| inputs.contains(p)) {
            bail!(
                "{} is one of the inputs: it is never written over; choose another output folder with -o",
                input.display()
            );
        }
        if !existing.is_empty() && !overwrite {
            let names: Vec<_> = existing.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy()).collect();
            bail!(
                "{} holds stems already ({}): kept; --overwrite replaces them with this song's, or choose another \
                 output folder with -o",
                dir.display(),
                names.join(", ")
            );
        }
        let writing: Vec<PathBuf> = stems.iter().map(|&s| stem_path(dir, s)).collect();
        let stale = existing.into_iter().filter(|p| !writing.contains(p)).collect();
        Ok(SongStems { dir: dir.to_path_buf(), files: Vec::new(), stale })
    }

    /// A new, empty file for `stem` under a temporary name; a file made for it before (a first
    /// pass of `--fit`) is removed.
    ///
    /// # Errors
    /// The file cannot be created, or the process is being interrupted.
    pub fn create(&mut self, stem: Stem) -> Result<File> {
        let target = stem_path(&self.dir, stem);
        if let Some(at) = self.files.iter().position(|(_, t)| *t == target) {
            let (temporary, _) = self.files.swap_remove(at);
            forget(&temporary);
        }
        // Created under the lock, so that an interruption either finds it recorded or comes first.
        let mut unfinished = unfinished();
        if unfinished.interrupted {
            bail!("interrupted");
        }
        for n in 0u32.. {
            let temporary = self.dir.join(format!(".{stem}.wav.{}-{n}.partial", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&temporary) {
                Ok(file) => {
                    unfinished.paths.push(temporary.clone());
                    self.files.push((temporary, target));
                    return Ok(file);
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot write {}", temporary.display())),
            }
        }
        unreachable!("a free temporary name among 2³² candidates")
    }

    /// Renames every stem into place (interruptions wait until all are) and removes the stale ones.
    ///
    /// # Errors
    /// A rename or removal fails, or the process is being interrupted.
    pub fn commit(mut self) -> Result<()> {
        {
            let mut unfinished = unfinished();
            if unfinished.interrupted {
                bail!("interrupted");
            }
            let mut failure = None;
            for (temporary, target) in std::mem::take(&mut self.files) {
                unfinished.paths.retain(|p| *p != temporary);
                if failure.is_none() {
                    match std::fs::rename(&temporary, &target) {
                        Ok(()) => continue,
                        Err(e) => {
                            let what = format!("cannot rename {} to {}", temporary.display(), target.display());
                            failure = Some(anyhow::Error::new(e).context(what));
                        }
                    }
                }
                let _ = std::fs::remove_file(&temporary);
            }
            if let Some(failure) = failure {
                return Err(failure);
            }
            // Still under the lock: an interruption never leaves new stems beside an earlier one.
            for stale in &self.stale {
                std::fs::remove_file(stale)
                    .with_context(|| format!("cannot remove the earlier {}", stale.display()))?;
            }
        }
        // The renames reach the disk with the folder.
        #[cfg(unix)]
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("cannot sync {}", self.dir.display()))?;
        Ok(())
    }
}

/// Removes a temporary file and forgets it.
fn forget(temporary: &Path) {
    unfinished().paths.retain(|p| p != temporary);
    let _ = std::fs::remove_file(temporary);
}

impl Drop for SongStems {
    fn drop(&mut self) {
        for (temporary, _) in self.files.drain(..) {
            forget(&temporary);
        }
    }
}
