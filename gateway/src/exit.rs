//! Exit codes of the commands that run a gateway (`penghubung serve`, `penghubung demo`): how a shutdown or a
//! failed start ends the process. Shared by [`crate::cli`] and [`crate::demo`], so that neither needs the other.

use penghubung_server::{ShutdownOutcome, StartError};

/// The exit code after a shutdown: 0 when every connection drained, 2 when the grace period ran out.
pub(crate) fn exit_code(outcome: ShutdownOutcome) -> i32 {
    match outcome {
        ShutdownOutcome::Drained => 0,
        ShutdownOutcome::DeadlineReached => 2,
    }
}

/// Reports a failed start on stderr (every document problem, then the error) and returns the exit code 1.
pub(crate) fn start_failed(error: StartError) -> i32 {
    if let StartError::Documents(problems) = &error {
        for p in problems {
            eprintln!("{p}");
        }
    }
    eprintln!("penghubung: cannot start: {error}");
    1
}
