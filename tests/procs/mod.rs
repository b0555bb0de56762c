//! Child processes for the tests that run `rask-scheduler` and `rask-worker`
//! as real processes (chaos, load, retire, reconnect, tls, cluster
//! processes): start one with its stdout read line by line on a thread of
//! its own, wait (with a deadline) for a line or an address, signal it, wait
//! for it to exit; dropping a [`Proc`] kills it.
//!
//! Every child runs with `RASK_VALIDATE=amortized` (the scheduler and
//! worker cores check their invariants after every step while they hold
//! fewer than 1,000 keys, now and then above: see `rask::invariants`)
//! unless the test passes its own `RASK_VALIDATE`. A broken invariant aborts the
//! child (SIGABRT) with the invariant's message on stderr; a [`Proc`] whose
//! child died of SIGABRT fails the test when it is dropped or waited for, so
//! a worker that broke an invariant cannot pass for one killed on purpose.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long [`Proc::line_with`] waits for a line.
const LINE_WAIT: Duration = Duration::from_secs(30);

/// A child process, killed when dropped.
pub struct Proc {
    pub child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    /// Starts `exe` with `args`, `RUST_LOG=warn` and stderr inherited.
    pub fn spawn<S: AsRef<OsStr>>(exe: &str, args: &[S]) -> Proc {
        Proc::spawn_with(exe, args, &[], "warn", Stdio::inherit())
    }

    /// Starts `exe` with `args`, the environment variables `env`, `RUST_LOG`
    /// set to `log`, and stderr going to `stderr`.
    pub fn spawn_with<S: AsRef<OsStr>>(
        exe: &str,
        args: &[S],
        env: &[(&str, &Path)],
        log: &str,
        stderr: Stdio,
    ) -> Proc {
        let mut cmd = Command::new(exe);
        if !env.iter().any(|(k, _)| *k == "RASK_VALIDATE") {
            cmd.env("RASK_VALIDATE", "amortized");
        }
        cmd.args(args)
            .env("RUST_LOG", log)
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc { child, lines }
    }

    /// The first line of stdout containing `needle` (waits at most 30 s).
    pub fn line_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + LINE_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.contains(needle) => return l,
                Ok(_) => {}
                Err(e) => panic!("no line with {needle:?} on stdout: {e}"),
            }
        }
    }

    /// The address on the first stdout line containing `needle`.
    pub fn address_after(&self, needle: &str) -> String {
        address_in(&self.line_with(needle))
    }

    /// `VmRSS` and `VmHWM` (the peak RSS) of the process, in bytes.
    pub fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("reading /proc/PID/status");
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .map(|kb| kb * 1024)
                .unwrap_or_else(|| panic!("no {name} in /proc/PID/status"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Sends a signal with kill(1): `sig` as kill takes it (`-TERM`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("running kill")
            .success();
        assert!(ok, "kill {sig} failed");
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                assert_not_aborted(s);
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let exited = self.child.try_wait().ok().flatten();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(s) = exited {
            if !std::thread::panicking() {
                assert_not_aborted(s);
            }
        }
    }
}

/// Fails the test if a child died of SIGABRT: with `RASK_VALIDATE`, a core
/// that broke an invariant (its message is on the child's stderr).
pub fn assert_not_aborted(s: ExitStatus) {
    use std::os::unix::process::ExitStatusExt;
    assert!(
        s.signal() != Some(6),
        "a child process aborted (SIGABRT): with RASK_VALIDATE a core broke an invariant \
         (the message `rask: RASK_VALIDATE: ...` is on its stderr)"
    );
}

/// The `tcp://...` or `tls://...` address in a line.
pub fn address_in(line: &str) -> String {
    let start = line
        .find("tcp://")
        .or_else(|| line.find("tls://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    line[start..]
        .split(|c: char| c.is_whitespace() || c == ',')
        .next()
        .unwrap()
        .to_string()
}

/// A fresh, empty directory `rask-<tag>-<pid>` under the temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rask-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles tests/plugins/count_plugin.c (`counted(x, ms)` works `ms`
/// milliseconds and logs each run) into `dir`.
pub fn count_plugin(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = dir.join("libcount.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-I"])
        .arg(root.join("include"))
        .arg("-o")
        .arg(&out)
        .arg(root.join("tests/plugins/count_plugin.c"))
        .status()
        .expect("running cc");
    assert!(status.success(), "cc failed on count_plugin.c");
    out
}

/// Runs `exe` (stderr piped) until it prints a stdout line with `ready`,
/// then kills it; returns everything it wrote to stderr.
pub fn stderr_until_ready<S: AsRef<OsStr>>(exe: &str, args: &[S], ready: &str) -> String {
    let mut p = Proc::spawn_with(exe, args, &[], "warn", Stdio::piped());
    let err = p.child.stderr.take().unwrap();
    let collect = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(err), &mut s);
        s
    });
    p.line_with(ready);
    p.child.kill().unwrap();
    p.child.wait().unwrap();
    collect.join().unwrap()
}
