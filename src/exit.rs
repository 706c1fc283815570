//! How a run that failed ends: its exit status (the library's
//! [`ExitStatus`], documented in `cli::EXIT_STATUS`) and its message, with
//! the flag that carried a bad value added to the library's domain errors.

use crate::flags::with_flags;

use wsl_tarball::app::{AppError, ExitStatus, ReadingError};
use wsl_tarball::escape::Escaped;

/// A command that did not succeed: the message and the exit status.
#[derive(Debug)]
pub struct Failure {
    pub status: ExitStatus,
    pub error: anyhow::Error,
}

impl Failure {
    /// Trouble (exit status 2): bad usage the command line found, or a
    /// reading command's report that cannot be printed.
    pub fn trouble(error: anyhow::Error) -> Self {
        Failure {
            status: ExitStatus::Trouble,
            error,
        }
    }

    /// The message on stderr: findings with the way to accept deliberate
    /// ones (`page` documents the command's --allow), else the error.
    pub fn report(&self, page: &str) {
        if self.status == ExitStatus::Findings {
            let message = format!("{:#}", self.error);
            eprintln!(
                "wsl-tarball: {}; accept deliberate ones with --allow (see `man {page}`)",
                Escaped(&message)
            );
        } else {
            eprintln!(
                "wsl-tarball: error: {}",
                Escaped(&error_message(&self.error))
            );
        }
    }
}

/// A writing command's failure, with the flags added.
impl From<AppError> for Failure {
    fn from(error: AppError) -> Self {
        Failure {
            status: error.status(),
            error: with_flags(error),
        }
    }
}

/// A reading command's failure, with the flags added.
impl From<ReadingError> for Failure {
    fn from(error: ReadingError) -> Self {
        Failure {
            status: error.status(),
            error: with_flags(error.0),
        }
    }
}

/// The command line's own failures (printing the output): exit status 1.
impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure {
            status: ExitStatus::Failure,
            error,
        }
    }
}

/// The error and its causes joined by ": ", leaving out a cause whose text
/// the message already holds (the library's errors name their cause).
fn error_message(error: &anyhow::Error) -> String {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}
