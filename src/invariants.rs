//! `RASK_VALIDATE`: the scheduler and worker cores check their invariants
//! (`SchedulerState::validate`, `WorkerState::validate`) in the real
//! processes and the library, not only in unit tests.
//!
//! The environment variable is read once, at the first step of the first
//! core of the process:
//!
//! - unset, empty or `0`: off (the default). A step then costs one load of a
//!   cached value and a branch.
//! - `1`: after every step (a batch of events the scheduler's core handled;
//!   one locked change of a worker's core, with the messages it decided).
//!   Each check is O(size of the state): for tests with small states.
//! - `amortized`: after every step while the state holds fewer than
//!   [`AMORTIZED_FROM`] keys; above that, once per `keys / 16` steps, so a
//!   step pays for about 16 keys' worth of checking whatever the size (for
//!   the chaos and load tests, with 10,000 to millions of keys; every step
//!   would make them quadratic).
//!
//! A broken invariant is a bug in rask: the process prints
//! `rask: RASK_VALIDATE: the <core> core broke an invariant: <message>` to
//! stderr and aborts (SIGABRT), whichever thread found it, so that no test
//! can mistake it for a worker lost on purpose.

use std::sync::OnceLock;

/// How often the cores check themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Off,
    EveryStep,
    Amortized,
}

/// In `amortized` mode, states smaller than this are checked after every
/// step.
pub const AMORTIZED_FROM: usize = 1_000;

/// In `amortized` mode, a state of `n` keys is checked once per
/// `n / AMORTIZED_RATIO` steps.
pub const AMORTIZED_RATIO: usize = 16;

/// Parses a `RASK_VALIDATE` value (`None`: unset).
pub fn parse(value: Option<&str>) -> Result<Mode, String> {
    match value.map(str::trim) {
        None | Some("") | Some("0") => Ok(Mode::Off),
        Some("1") => Ok(Mode::EveryStep),
        Some("amortized") => Ok(Mode::Amortized),
        Some(other) => Err(format!(
            "RASK_VALIDATE={other:?}: expected 0, 1 or amortized"
        )),
    }
}

/// The process's mode, read from `RASK_VALIDATE` once. A value it does not
/// know is a mistake in the test setup: it is reported and treated as `1`
/// (checking more, never less, than was meant).
pub fn mode() -> Mode {
    static MODE: OnceLock<Mode> = OnceLock::new();
    *MODE.get_or_init(|| {
        let v = std::env::var("RASK_VALIDATE").ok();
        match parse(v.as_deref()) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("rask: {e}; checking after every step");
                Mode::EveryStep
            }
        }
    })
}

/// One core's checker: counts steps and decides when to check.
#[derive(Debug)]
pub struct Checker {
    mode: Mode,
    /// Steps since the last check.
    since: usize,
    /// What is checked, for the message: "scheduler", "worker".
    core: &'static str,
}

impl Checker {
    /// A checker in the process's mode ([`mode`]).
    pub fn new(core: &'static str) -> Checker {
        Checker::with_mode(core, mode())
    }

    pub fn with_mode(core: &'static str, mode: Mode) -> Checker {
        Checker {
            mode,
            since: 0,
            core,
        }
    }

    pub fn is_on(&self) -> bool {
        self.mode != Mode::Off
    }

    /// Whether the step that just ended is checked, for a state of `size`
    /// keys.
    #[inline]
    pub fn due(&mut self, size: usize) -> bool {
        match self.mode {
            Mode::Off => false,
            Mode::EveryStep => true,
            Mode::Amortized => {
                self.since += 1;
                if size < AMORTIZED_FROM || self.since * AMORTIZED_RATIO >= size {
                    self.since = 0;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// After a step: when due, runs `validate` and aborts the process if an
    /// invariant is broken.
    #[inline]
    pub fn after_step(&mut self, size: usize, validate: impl FnOnce() -> Result<(), String>) {
        if self.due(size) {
            if let Err(e) = validate() {
                broken(self.core, &e);
            }
        }
    }
}

/// Reports a broken invariant and aborts.
#[cold]
pub fn broken(core: &str, message: &str) -> ! {
    let line = format!("rask: RASK_VALIDATE: the {core} core broke an invariant: {message}");
    tracing::error!("{line}");
    eprintln!("{line}");
    std::process::abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_of_the_switch() {
        assert_eq!(parse(None), Ok(Mode::Off));
        assert_eq!(parse(Some("")), Ok(Mode::Off));
        assert_eq!(parse(Some("0")), Ok(Mode::Off));
        assert_eq!(parse(Some("1")), Ok(Mode::EveryStep));
        assert_eq!(parse(Some("amortized")), Ok(Mode::Amortized));
        assert!(parse(Some("yes")).unwrap_err().contains("expected 0, 1"));
    }

    #[test]
    fn off_never_checks_every_step_always_does() {
        let mut off = Checker::with_mode("test", Mode::Off);
        let mut every = Checker::with_mode("test", Mode::EveryStep);
        for size in [0, 1, 1_000_000] {
            assert!(!off.due(size));
            assert!(every.due(size));
        }
        off.after_step(5, || panic!("an off checker ran validate"));
        let mut ran = 0;
        every.after_step(5, || {
            ran += 1;
            Ok(())
        });
        assert_eq!(ran, 1);
    }

    #[test]
    fn amortized_checks_small_states_every_step_and_large_ones_now_and_then() {
        let mut c = Checker::with_mode("test", Mode::Amortized);
        assert!((0..100).all(|_| c.due(AMORTIZED_FROM - 1)));
        let size = 64 * AMORTIZED_FROM;
        let period = size / AMORTIZED_RATIO;
        let checked = (0..10 * period).filter(|_| c.due(size)).count();
        assert_eq!(checked, 10);
    }
}
