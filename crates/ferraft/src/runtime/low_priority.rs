//! The host's background jobs (snapshot encode, install decode, log reads
//! for a lagging node) at a lower OS priority: on a machine whose cores the
//! nodes share, a learner's decode and a leader's reads for it then give way
//! to the Raft tasks serving clients (issue 22).
//!
//! Each job gets a thread of its own rather than one of tokio's blocking
//! threads. A thread's nice value is its own on Linux, but tokio reuses its
//! blocking threads for whatever comes next (the KV server's backup reads,
//! another node's jobs); raising one for a job would need lowering it back
//! afterwards, which an unprivileged process cannot do (that takes
//! CAP_SYS_NICE or an RLIMIT_NICE above 0, neither the default): the thread
//! would stay slow for good. A thread of our own is niced once and ends
//! with its job. Jobs are coarse (a whole snapshot, an install, a range read
//! of up to `max_append_bytes`), so starting a thread is noise beside them.
//!
//! Off Linux the setting does nothing: jobs run on tokio's blocking threads.

use std::sync::{Arc, Mutex};

/// A job that sends its own result on.
type Job = Box<dyn FnOnce() + Send + 'static>;

/// Runs `job` off the async threads, `nice` steps nicer than the node's own
/// threads (capped at 19 by the kernel); with 0, on tokio's blocking pool
/// as before. Needs a tokio runtime only for 0, or off Linux.
pub(crate) fn spawn_job(nice: u8, job: impl FnOnce() + Send + 'static) {
    if nice == 0 || !cfg!(target_os = "linux") {
        tokio::task::spawn_blocking(job);
        return;
    }
    // The job is handed back if no thread can be started, so it still runs
    // (at normal priority): a lost job leaves the host waiting forever.
    let slot: Arc<Mutex<Option<Job>>> = Arc::new(Mutex::new(Some(Box::new(job))));
    let theirs = slot.clone();
    let runtime = tokio::runtime::Handle::try_current().ok();
    let started = std::thread::Builder::new().name("ferraft-job".into()).spawn(move || {
        if let Some(job) = take(&theirs) {
            lower_priority(nice);
            // as on a blocking thread, a job may use the runtime
            let _entered = runtime.as_ref().map(|r| r.enter());
            job();
        }
    });
    if let Err(error) = started {
        tracing::warn!(%error, "cannot start a thread for a background job: running it at normal priority");
        if let Some(job) = take(&slot) {
            tokio::task::spawn_blocking(job);
        }
    }
}

/// Runs jobs one after another, in the order given, on one thread of its
/// own started at the first job and niced like [`spawn_job`]'s: for jobs
/// whose results must come back in order (a snapshot's chunks). The thread
/// ends when this is dropped.
#[derive(Default)]
pub(crate) struct InOrder {
    jobs: Option<std::sync::mpsc::Sender<Job>>,
}

impl InOrder {
    /// Queues `job`; it runs after every job queued before it.
    pub(crate) fn run(&mut self, nice: u8, job: impl FnOnce() + Send + 'static) {
        let mut job: Job = Box::new(job);
        if let Some(jobs) = &self.jobs {
            match jobs.send(job) {
                Ok(()) => return,
                // the thread is gone (a job panicked): start another
                Err(std::sync::mpsc::SendError(returned)) => job = returned,
            }
        }
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let started = std::thread::Builder::new().name("ferraft-job-in-order".into()).spawn(move || {
            if nice > 0 {
                lower_priority(nice);
            }
            for job in queue {
                job();
            }
        });
        match started {
            Ok(_) => {
                let _ = jobs.send(job);
                self.jobs = Some(jobs);
            }
            Err(error) => {
                tracing::warn!(%error, "cannot start a thread for ordered background jobs: running one inline");
                job();
            }
        }
    }
}

fn take(slot: &Mutex<Option<Job>>) -> Option<Job> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// Makes the calling thread `by` steps nicer. A refusal (a sandbox that
/// forbids it) is logged, and the job runs at normal priority.
#[cfg(target_os = "linux")]
fn lower_priority(by: u8) {
    let tid = current_thread_id();
    let target = thread_nice().saturating_add(i32::from(by)).min(19);
    // SAFETY: setpriority has no memory effects; tid is this thread.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, target) } != 0 {
        let error = std::io::Error::last_os_error();
        tracing::warn!(%error, "cannot lower a background job's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_by: u8) {}

#[cfg(target_os = "linux")]
fn current_thread_id() -> libc::id_t {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as libc::id_t }
}

/// The calling thread's nice value (-20..=19).
#[cfg(target_os = "linux")]
pub(crate) fn thread_nice() -> i32 {
    // SAFETY: getpriority has no memory effects; its -1 is ambiguous, but
    // for this thread it cannot fail (ESRCH, EINVAL do not apply).
    unsafe { libc::getpriority(libc::PRIO_PROCESS, current_thread_id()) }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::sync::mpsc;

    use super::*;

    fn nice_inside_a_job(nice: u8) -> i32 {
        let (tx, rx) = mpsc::channel();
        spawn_job(nice, move || tx.send(thread_nice()).unwrap());
        rx.recv().unwrap()
    }

    fn runtime_with_one_blocking_thread() -> tokio::runtime::Runtime {
        // one blocking thread: every blocking job reuses it
        tokio::runtime::Builder::new_current_thread().max_blocking_threads(1).build().unwrap()
    }

    #[test]
    fn a_job_runs_niced_by_the_setting() {
        let base = thread_nice();
        assert_eq!(nice_inside_a_job(7), (base + 7).min(19));
    }

    #[test]
    fn the_threads_other_work_runs_on_keep_their_priority_after_a_job() {
        let runtime = runtime_with_one_blocking_thread();
        let base = runtime.block_on(async { tokio::task::spawn_blocking(thread_nice).await }).unwrap();
        let inside = runtime.block_on(async { nice_inside_a_job(10) });
        assert_eq!(inside, (base + 10).min(19));
        let after = runtime.block_on(async { tokio::task::spawn_blocking(thread_nice).await }).unwrap();
        assert_eq!(after, base, "the blocking thread is as it was");
        assert_eq!(thread_nice(), base, "and so is the caller");
    }

    #[test]
    fn a_setting_of_zero_runs_jobs_at_the_nodes_own_priority() {
        let runtime = runtime_with_one_blocking_thread();
        let _guard = runtime.enter();
        assert_eq!(nice_inside_a_job(0), thread_nice());
    }
}
