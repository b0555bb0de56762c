//! The scheduler: it holds the task graph of every client, decides which
//! worker runs what, and tracks where every result lives.
//!
//! - [`state`]: the decisions, with no I/O ([`SchedulerState`]). Every
//!   choice (task states, placement, backlog, priorities, reference
//!   counting, failures) is documented there.
//! - [`server`]: the tokio server around it ([`Scheduler::start`]), on
//!   the process-wide runtime ([`crate::runtime`]).
//! - The `rask-scheduler` binary (`src/bin/rask-scheduler.rs`) runs one from
//!   the command line.
//!
//! ```no_run
//! use rask::scheduler::{Scheduler, SchedulerConfig};
//! let s = Scheduler::start(SchedulerConfig { port: 0, ..Default::default() }).unwrap();
//! println!("listening on {}", s.address());
//! s.shutdown();
//! ```

pub mod dashboard;
pub mod server;
pub mod state;

pub use server::{Scheduler, SchedulerConfig, SchedulerHandle, SchedulerStats, DEFAULT_DASHBOARD};
pub use state::{SchedulerOptions, SchedulerState};
