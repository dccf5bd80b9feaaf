//! The worker's view of the input's marks: stretches of input from one [`Seam`] to the next,
//! each with the timeline position of its first frame once known, and the jumps still to resolve.

use std::collections::VecDeque;
use std::ops::Range;

use super::{Mark, Seam};

/// A stretch of input from one mark to the next, as the worker resolved it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Run {
    /// Its first frame, counted from the stream's (re)start.
    pub at: u64,
    /// Whether its stems may play from (and go into) the cache: real time.
    pub cached: bool,
    /// The timeline position of its first frame: `None` where the host's cannot be trusted.
    pub position: Option<i64>,
    /// Whether the engine restarts here: a verified jump.
    pub cut: bool,
    /// A marked jump (or anchor) still to resolve: the host's position.
    pub jump: Option<i64>,
    /// Whether it may be cut: a jump, not an anchor.
    cuttable: bool,
    /// Marked [`Mark::Continue`]: its position follows from the run before.
    inherits: bool,
}

impl Run {
    /// The timeline position of frame `at` of this run, if it has one.
    pub fn position_of(&self, at: u64) -> Option<i64> {
        self.position.map(|p| p + (at - self.at) as i64)
    }
}

/// What is known of the mark after a jump.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Next {
    /// Not come yet.
    Unknown,
    /// [`Mark::Continue`]: the host went on by the block. The stretch the jump began ends at
    /// this frame, if known.
    Confirms(Option<u64>),
    /// Another mark: the jump is not taken.
    Cancels,
}

/// A marked jump to resolve.
#[derive(Debug, Clone, Copy)]
pub(super) struct Jump {
    index: usize,
    pub at: u64,
    pub hint: i64,
    pub cached: bool,
    /// A jump, not an anchor: it may be cut.
    pub cuttable: bool,
    pub next: Next,
}

/// How a jump was resolved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Outcome {
    /// Not confirmed: no position.
    Cancelled,
    /// Confirmed, not verified: the engine runs on; positions count from this one.
    Kept(i64),
    /// Verified at this position: the engine restarts here.
    Cut(i64),
}

/// The runs from the one being emitted on, by first frame.
#[derive(Default)]
pub(super) struct Runs(VecDeque<Run>);

impl Runs {
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Takes the next mark.
    pub fn push(&mut self, seam: Seam) {
        let jump = match seam.mark {
            Mark::Jump(position) | Mark::Anchor(position) => Some(position),
            _ => None,
        };
        let (inherits, cuttable) = (seam.mark == Mark::Continue, matches!(seam.mark, Mark::Jump(_)));
        let run = Run { at: seam.at, cached: seam.cached, position: None, cut: false, jump, cuttable, inherits };
        self.0.push_back(run);
        self.settle_positions(self.0.len() - 1);
    }

    /// Gives the runs from `from` on that follow from resolved ones their positions.
    fn settle_positions(&mut self, from: usize) {
        for i in from..self.0.len() {
            let unresolved = |j: usize| self.0[j].jump.is_some();
            if unresolved(i) || i > 0 && unresolved(i - 1) {
                return;
            }
            if self.0[i].inherits && i > 0 {
                self.0[i].position = self.0[i - 1].position_of(self.0[i].at);
            }
        }
    }

    /// The run frame `at` belongs to.
    pub fn run_of(&self, at: u64) -> &Run {
        let i = self.0.partition_point(|run| run.at <= at);
        &self.0[i.checked_sub(1).expect("every frame is in a run")]
    }

    /// The timeline position where the stretch of positions counted on up to frame `at` began:
    /// that of the last run before it not marked [`Mark::Continue`] (or of the oldest run kept).
    pub fn stretch_start(&self, at: u64) -> Option<i64> {
        let i = self.0.partition_point(|run| run.at <= at).checked_sub(1)?;
        let first = self.0.range(..=i).rposition(|run| !run.inherits).unwrap_or(0);
        self.0[first].position
    }

    /// The first frame after `at` where the engine restarts or a jump is unresolved, and whether
    /// it is unresolved.
    pub fn boundary_after(&self, at: u64) -> Option<(u64, bool)> {
        let i = self.0.partition_point(|run| run.at <= at);
        self.0.range(i..).find(|run| run.cut || run.jump.is_some()).map(|run| (run.at, run.jump.is_some()))
    }

    /// The first frame of the first unresolved jump.
    pub fn unresolved_from(&self) -> Option<u64> {
        self.0.iter().find(|run| run.jump.is_some()).map(|run| run.at)
    }

    /// `frames` cut where runs begin, each piece with its run.
    pub fn pieces(&self, frames: Range<u64>) -> impl Iterator<Item = (Range<u64>, Run)> + '_ {
        let mut at = frames.start;
        std::iter::from_fn(move || {
            (at < frames.end).then(|| {
                let i = self.0.partition_point(|run| run.at <= at);
                let to = self.0.get(i).map_or(frames.end, |next| next.at.min(frames.end));
                let piece = (at..to, self.0[i - 1]);
                at = to;
                piece
            })
        })
    }

    /// The first unresolved jump and what is known of the mark after it.
    pub fn first_jump(&self) -> Option<Jump> {
        let index = self.0.iter().position(|run| run.jump.is_some())?;
        let run = self.0[index];
        let next = match self.0.get(index + 1) {
            None => Next::Unknown,
            Some(next) if next.inherits => {
                Next::Confirms(self.0.range(index + 1..).find(|later| !later.inherits).map(|later| later.at))
            }
            Some(_) => Next::Cancels,
        };
        let hint = run.jump.expect("a jump");
        Some(Jump { index, at: run.at, hint, cached: run.cached, cuttable: run.cuttable, next })
    }

    /// Resolves `jump`.
    pub fn settle(&mut self, jump: Jump, outcome: Outcome) {
        let run = &mut self.0[jump.index];
        (run.position, run.cut) = match outcome {
            Outcome::Cancelled => (None, false),
            Outcome::Kept(position) => (Some(position), false),
            Outcome::Cut(position) => (Some(position), true),
        };
        run.jump = None;
        self.settle_positions(jump.index + 1);
    }

    /// Drops the runs that lie wholly before frame `oldest`.
    pub fn forget_before(&mut self, oldest: u64) {
        while self.0.len() > 1 && self.0[1].at <= oldest {
            self.0.pop_front();
        }
    }
}
