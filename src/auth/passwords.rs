//! Argon2id password hashing on its own bounded workers.
//!
//! A hash costs ~19 MiB and tens of milliseconds of one core by design, which makes it the
//! cheapest way for an anonymous client to exhaust the box. So hashing never runs on the async
//! workers or the blocking pool that store calls use: a fixed set of `workers` threads, each with
//! its argon2 memory allocated once, at a lower scheduling priority than request handling, takes
//! jobs from a queue of `queue_capacity`. A full queue is refused at once (`HashError::Busy`)
//! instead of growing memory or latency without bound.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;

use crate::domain::Secret;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every worker is busy and the queue is full: the caller should answer "try again".
    #[error("the password hashing queue is full")]
    Busy,
    #[error("the password hashing workers have stopped")]
    Stopped,
    #[error("password hashing failed")]
    Argon2(#[source] argon2::Error),
    #[error("password hashing failed")]
    Params(#[source] argon2::password_hash::Error),
    #[error("password hashing failed")]
    Phc(#[source] argon2::password_hash::phc::Error),
}

/// How much lower than request handling hashing threads run (a nice value).
#[cfg(target_os = "linux")]
const HASHING_NICE: libc::c_int = 10;

/// Salt length of new hashes (the PHC recommendation).
const SALT_BYTES: usize = 16;
/// Stored hashes asking for more memory than this never match: they are not ours, and honouring
/// them would let a crafted record allocate without bound.
const MAX_M_COST_KIB: u32 = 256 * 1024;

/// The one cost every new hash uses (argon2's defaults: m=19 MiB, t=2, p=1).
fn default_params() -> Params {
    Params::DEFAULT
}

/// A worker's argon2 memory, allocated once and reused for every job it runs.
pub struct HashMemory {
    blocks: Vec<Block>,
}

impl HashMemory {
    pub fn new() -> HashMemory {
        HashMemory {
            blocks: vec![Block::default(); default_params().block_count()],
        }
    }

    /// The blocks for `params`, growing (once) for a stored hash with a larger cost.
    fn for_params(&mut self, params: &Params) -> &mut [Block] {
        let needed = params.block_count();
        if self.blocks.len() < needed {
            self.blocks.resize(needed, Block::default());
        }
        &mut self.blocks[..needed]
    }
}

impl Default for HashMemory {
    fn default() -> Self {
        HashMemory::new()
    }
}

/// An Argon2id PHC string of `password` with a fresh salt and the default cost.
pub fn hash_with(memory: &mut HashMemory, password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; SALT_BYTES];
    rand::fill(&mut salt);
    let params = default_params();
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(
            password.as_bytes(),
            &salt,
            &mut out,
            memory.for_params(&params),
        )
        .map_err(HashError::Argon2)?;
    phc_string(&params, &salt, &out)
}

/// The PHC string of an Argon2id v1.3 output.
fn phc_string(params: &Params, salt: &[u8], out: &[u8]) -> Result<String, HashError> {
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(HashError::Params)?,
        salt: Some(Salt::new(salt).map_err(HashError::Phc)?),
        hash: Some(Output::new(out).map_err(HashError::Phc)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string, recomputed in `memory` and compared in constant
/// time. A malformed or foreign stored hash never matches.
pub fn verify_with(memory: &mut HashMemory, password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = parsed.algorithm.as_str().parse::<Algorithm>() else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST_KIB {
        return false;
    }
    let argon = Argon2::new(algorithm, version, params.clone());
    let mut out = vec![0u8; expected.len()];
    if argon
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt.as_ref(),
            &mut out,
            memory.for_params(&params),
        )
        .is_err()
    {
        return false;
    }
    out.ct_eq(expected.as_bytes()).into()
}

/// Hashes on the calling thread with memory of its own: for tests and tools, never for requests.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    hash_with(&mut HashMemory::new(), password)
}

/// Verifies on the calling thread: for tests and tools, never for requests.
pub fn verify_password(password: &str, phc: &str) -> bool {
    verify_with(&mut HashMemory::new(), password, phc)
}

/// A PHC string with the default cost, a random salt and a random output: verifying against it
/// costs exactly what a real check costs and never matches. Used for unknown emails, so that a
/// wrong email can't be told from a wrong password by timing.
fn dummy_phc() -> Result<String, HashError> {
    let mut salt = [0u8; SALT_BYTES];
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    rand::fill(&mut salt);
    rand::fill(&mut out);
    let params = default_params();
    phc_string(&params, &salt, &out)
}

enum Work {
    Hash { password: String },
    Verify { password: String, phc: String },
}

enum Done {
    Hashed(Result<String, HashError>),
    Verified(bool),
}

struct Job {
    work: Work,
    reply: tokio::sync::oneshot::Sender<Done>,
}

struct Shared {
    jobs: SyncSender<Job>,
    /// Jobs accepted and not yet finished (queued or running).
    in_flight: AtomicUsize,
    /// Argon2 computations run since start: what a throttle test counts.
    computations: AtomicU64,
    dummy_phc: String,
    workers: usize,
    queue_capacity: usize,
}

/// The handle on the hashing workers. Cloning is cheap; every clone feeds the same workers.
#[derive(Clone)]
pub struct PasswordHasher {
    shared: Arc<Shared>,
}

impl PasswordHasher {
    /// Starts `workers` hashing threads (at least one) behind a queue of `queue_capacity` jobs.
    /// Each thread allocates its argon2 memory now, once.
    pub fn start(workers: usize, queue_capacity: usize) -> Result<PasswordHasher, std::io::Error> {
        let workers = workers.max(1);
        let (jobs, receiver) = std::sync::mpsc::sync_channel::<Job>(queue_capacity);
        let receiver = Arc::new(Mutex::new(receiver));
        let shared = Arc::new(Shared {
            jobs,
            in_flight: AtomicUsize::new(0),
            computations: AtomicU64::new(0),
            dummy_phc: dummy_phc().map_err(std::io::Error::other)?,
            workers,
            queue_capacity,
        });
        for index in 0..workers {
            let receiver = Arc::clone(&receiver);
            let weak = Arc::downgrade(&shared);
            std::thread::Builder::new()
                .name(format!("roost-hash-{index}"))
                .spawn(move || run_worker(&receiver, &weak))?;
        }
        Ok(PasswordHasher { shared })
    }

    /// A new PHC string for `password`.
    pub async fn hash(&self, password: &str) -> Result<Secret<String>, HashError> {
        let work = Work::Hash {
            password: password.to_string(),
        };
        match self.submit(work).await? {
            Done::Hashed(result) => result.map(Secret::new),
            Done::Verified(_) => Err(HashError::Stopped),
        }
    }

    /// Whether `password` matches `phc`; with no stored hash (unknown email, no password set
    /// yet) it verifies against a dummy so that the answer takes the same time, and is false.
    pub async fn verify(
        &self,
        password: &str,
        phc: Option<&Secret<String>>,
    ) -> Result<bool, HashError> {
        let work = Work::Verify {
            password: password.to_string(),
            phc: phc.map_or(&self.shared.dummy_phc, Secret::expose).clone(),
        };
        let matched = match self.submit(work).await? {
            Done::Verified(matched) => matched,
            Done::Hashed(_) => return Err(HashError::Stopped),
        };
        Ok(matched && phc.is_some())
    }

    async fn submit(&self, work: Work) -> Result<Done, HashError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        match self.shared.jobs.try_send(Job { work, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                return Err(HashError::Busy);
            }
            Err(TrySendError::Disconnected(_)) => {
                self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                return Err(HashError::Stopped);
            }
        }
        answer.await.map_err(|_| HashError::Stopped)
    }

    /// Argon2 computations run so far (hashes and verifications, dummy ones included).
    pub fn computations(&self) -> u64 {
        self.shared.computations.load(Ordering::SeqCst)
    }

    /// Jobs accepted and not finished: queued plus running.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    pub fn workers(&self) -> usize {
        self.shared.workers
    }

    pub fn queue_capacity(&self) -> usize {
        self.shared.queue_capacity
    }
}

fn run_worker(receiver: &Mutex<Receiver<Job>>, shared: &std::sync::Weak<Shared>) {
    lower_this_threads_priority();
    let mut memory = HashMemory::new();
    loop {
        // One worker waits in `recv` at a time; the others wait for the lock. Either way a job
        // goes to the first free worker.
        let job = {
            let receiver = receiver.lock().unwrap_or_else(|e| e.into_inner());
            receiver.recv()
        };
        let Ok(job) = job else {
            return; // every handle is gone
        };
        let Some(shared) = shared.upgrade() else {
            return;
        };
        // A caller that went away (client disconnected) gets no computation.
        let done = (!job.reply.is_closed()).then(|| {
            shared.computations.fetch_add(1, Ordering::SeqCst);
            match job.work {
                Work::Hash { password } => Done::Hashed(hash_with(&mut memory, &password)),
                Work::Verify { password, phc } => {
                    Done::Verified(verify_with(&mut memory, &password, &phc))
                }
            }
        });
        // Counted out before the answer, so a caller that has its answer sees it settled.
        shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(done) = done {
            let _ = job.reply.send(done);
        }
    }
}

/// Hashing yields the CPU to request handling: this thread's nice value goes up by 10, so under
/// contention the scheduler gives request threads about nine times its share.
#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // SAFETY: gettid and setpriority only read their arguments; with PRIO_PROCESS and a thread id
    // setpriority changes that one thread (Linux semantics).
    let result = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, HASHING_NICE)
    };
    if result != 0 {
        tracing::warn!(
            "could not lower the priority of a password hashing thread: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_argon2id_with_the_default_cost() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn hashes_of_the_argon2_crate_verify_and_ours_verify_there() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let theirs = Argon2::default()
            .hash_password(b"a long password here")
            .unwrap()
            .to_string();
        assert!(verify_password("a long password here", &theirs));
        let ours = hash_password("another password").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"another password", &parsed)
                .is_ok()
        );
    }

    #[test]
    fn oversized_or_broken_stored_hashes_never_match() {
        let hash = hash_password("pw pw pw pw pw").unwrap();
        let greedy = hash.replace("m=19456", "m=4000000");
        assert!(!verify_password("pw pw pw pw pw", &greedy));
        let no_salt: String = hash.rsplitn(3, '$').last().unwrap().to_string();
        assert!(!verify_password("pw pw pw pw pw", &no_salt));
        assert!(!verify_password("pw pw pw pw pw", &dummy_phc().unwrap()));
    }

    #[tokio::test]
    async fn the_executor_hashes_verifies_counts_and_refuses_when_full() {
        let hasher = PasswordHasher::start(1, 1).unwrap();
        let hash = hasher.hash("first password!").await.unwrap();
        assert!(hasher.verify("first password!", Some(&hash)).await.unwrap());
        assert!(!hasher.verify("first password!", None).await.unwrap());
        assert_eq!(hasher.computations(), 3);

        // One running, one queued: the third is refused at once.
        let (a, b, c) = tokio::join!(
            hasher.verify("x", Some(&hash)),
            hasher.verify("y", Some(&hash)),
            hasher.verify("z", Some(&hash)),
        );
        let busy = [&a, &b, &c]
            .iter()
            .filter(|r| matches!(r, Err(HashError::Busy)))
            .count();
        assert!(busy >= 1, "{a:?} {b:?} {c:?}");
        assert_eq!(hasher.in_flight(), 0);
    }
}
