//! Where the pipeline's pieces go, in order: [`OrderedSink`]s, composed as
//! `(A, B)` the way [`crate::tar::ContentObserver`]s are. The output file
//! ([`OutputSink`]) and the progress ([`ProgressSink`]) are here; the cache
//! stores (`crate::write`) and a bundle's export stream (`crate::delta`)
//! are their writers' own.

use std::io::Write;

use super::{Fault, ReadyPiece};
use crate::progress::{Progress, REPORT_EVERY};

/// Takes a run's pieces in archive order, segment by segment.
pub(crate) trait OrderedSink<D, E> {
    /// The next piece, of segment `segment`.
    fn piece(&mut self, segment: usize, piece: &mut ReadyPiece) -> Result<(), E>;

    /// Segment `segment` is complete: every piece of it was handed on, and
    /// `done` is what its worker made of it.
    fn segment_end(&mut self, segment: usize, done: &D) -> Result<(), E> {
        let _ = (segment, done);
        Ok(())
    }
}

/// Takes nothing (a scan without output).
impl<D, E> OrderedSink<D, E> for () {
    fn piece(&mut self, _: usize, _: &mut ReadyPiece) -> Result<(), E> {
        Ok(())
    }
}

/// Both sinks, the first first.
impl<D, E, A: OrderedSink<D, E>, B: OrderedSink<D, E>> OrderedSink<D, E> for (A, B) {
    fn piece(&mut self, segment: usize, piece: &mut ReadyPiece) -> Result<(), E> {
        self.0.piece(segment, piece)?;
        self.1.piece(segment, piece)
    }

    fn segment_end(&mut self, segment: usize, done: &D) -> Result<(), E> {
        self.0.segment_end(segment, done)?;
        self.1.segment_end(segment, done)
    }
}

impl<D, E, T: OrderedSink<D, E> + ?Sized> OrderedSink<D, E> for &mut T {
    fn piece(&mut self, segment: usize, piece: &mut ReadyPiece) -> Result<(), E> {
        (**self).piece(segment, piece)
    }

    fn segment_end(&mut self, segment: usize, done: &D) -> Result<(), E> {
        (**self).segment_end(segment, done)
    }
}

/// Writes every piece's bytes (a cache hit's members copied from its file)
/// into the output.
pub(crate) struct OutputSink<W: Write>(pub W);

impl<D, E: From<Fault>, W: Write> OrderedSink<D, E> for OutputSink<W> {
    fn piece(&mut self, _: usize, piece: &mut ReadyPiece) -> Result<(), E> {
        let written = match piece {
            ReadyPiece::Made(made) => self.0.write_all(&made.bytes),
            ReadyPiece::Cached(found) => found.copy_members(&mut self.0).map(drop),
        };
        written.map_err(|error| Fault::Output(error).into())
    }
}

/// Counts the tar bytes handed on and tells the [`Progress`] every
/// [`REPORT_EVERY`] bytes.
pub(crate) struct ProgressSink<'p> {
    progress: &'p mut dyn Progress,
    /// Tar bytes handed on.
    pub tar_bytes: u64,
    reported: u64,
}

impl<'p> ProgressSink<'p> {
    pub fn new(progress: &'p mut dyn Progress) -> Self {
        ProgressSink {
            progress,
            tar_bytes: 0,
            reported: 0,
        }
    }

    /// `more` tar bytes are done beyond the pieces (the end of the
    /// archive): the last report.
    pub fn finish(self, more: u64) {
        self.progress.advance(self.tar_bytes + more);
    }
}

impl<D, E> OrderedSink<D, E> for ProgressSink<'_> {
    fn piece(&mut self, _: usize, piece: &mut ReadyPiece) -> Result<(), E> {
        self.tar_bytes += piece.tar_len();
        if self.tar_bytes - self.reported >= REPORT_EVERY {
            self.reported = self.tar_bytes;
            self.progress.advance(self.tar_bytes);
        }
        Ok(())
    }
}

/// The sink when there is one.
impl<D, E, T: OrderedSink<D, E>> OrderedSink<D, E> for Option<T> {
    fn piece(&mut self, segment: usize, piece: &mut ReadyPiece) -> Result<(), E> {
        match self {
            Some(sink) => sink.piece(segment, piece),
            None => Ok(()),
        }
    }

    fn segment_end(&mut self, segment: usize, done: &D) -> Result<(), E> {
        match self {
            Some(sink) => sink.segment_end(segment, done),
            None => Ok(()),
        }
    }
}
