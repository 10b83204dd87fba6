//! What a policy sees of time and chance: clocks and randomness that are a function of the
//! case, so the same case always gets the same decision, and no clock call can block the host.
//!
//! WASI's stock clocks read the host's real time, and a sleep (`subscribe-duration` then
//! `poll`) blocks the calling thread inside a host call, where the epoch deadline cannot
//! interrupt it: a guest sleeping an hour held the host for an hour. So the clock and random
//! interfaces are replaced, for every policy:
//!
//! - **Wall clock**: the failure's time (`failure.now`, the case's), or a fixed instant,
//!   [`WALL_CLOCK_EPOCH_SECS`] (2000-01-01T00:00:00Z), when the case has none.
//! - **Monotonic clock**: virtual nanoseconds since the call began: one per unit of fuel the
//!   call has used, plus every nanosecond the guest has slept.
//! - **Sleeps** return at once and advance the monotonic clock. A sleep that would end past the
//!   call's deadline ends the call with `DeadlineExceeded` straight away: waiting it out could
//!   only end the same way, later.
//! - **Randomness** (`wasi:random/random`, `insecure`, `insecure-seed`): ChaCha12 seeded from
//!   SHA-256 of the run id, restarted at every call. At most [`MAX_RANDOM_BYTES`] per request.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime::StoreContextMut;
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;
use wasmtime_wasi::p2::{subscribe, DynPollable, Pollable};
use wasmtime_wasi::HostWallClock;

/// The wall clock every policy reads: 2000-01-01T00:00:00Z, in seconds since the Unix epoch.
pub const WALL_CLOCK_EPOCH_SECS: u64 = 946_684_800;

/// The most random bytes one request may ask for (1 MiB). A policy has no use for more, and a
/// larger request would make the host allocate whatever the guest names.
pub const MAX_RANDOM_BYTES: u64 = 1 << 20;

/// The WASI version whose clock and random interfaces are replaced: the one wasmtime-wasi links
/// (guests importing any older 0.2.x resolve to it by semver).
const WASI_VERSION: &str = "0.2.12";

/// What the clocks and the generator need of a store's data: the call's state, and the resource
/// table a sleep's pollable goes in. The sandbox's per-call state implements it; this module
/// knows nothing else of it.
pub(crate) trait CallState: Send + 'static {
    fn call(&self) -> &CallEnv;
    fn call_mut(&mut self) -> &mut CallEnv;
    fn table(&mut self) -> &mut ResourceTable;
}

/// Per-call state behind the virtual clocks and the seeded generator.
pub(crate) struct CallEnv {
    /// Fuel at the start of the call: the monotonic clock counts fuel used since.
    fuel_budget: u64,
    /// Virtual nanoseconds slept so far in this call.
    slept_nanos: u64,
    /// The call's deadline in virtual nanoseconds.
    deadline_nanos: u64,
    rng: StdRng,
    /// What the wall clock reads during the call, since the Unix epoch.
    pub(crate) wall: Duration,
}

impl CallEnv {
    /// The state for a call with `fuel`, `deadline` and randomness from `seed`.
    pub(crate) fn new(fuel: u64, deadline: Duration, seed: [u8; 32]) -> Self {
        CallEnv {
            fuel_budget: fuel,
            slept_nanos: 0,
            deadline_nanos: u64::try_from(deadline.as_nanos()).unwrap_or(u64::MAX),
            rng: StdRng::from_seed(seed),
            wall: Duration::from_secs(WALL_CLOCK_EPOCH_SECS),
        }
    }
}

/// The wall clock of a call deciding on a failure at `now` (seconds since the Unix epoch): that
/// instant, or the fixed one when the case gives none. `now` is checked as input first.
pub(crate) fn wall_clock_at(now: Option<f64>) -> Duration {
    now.and_then(|secs| Duration::try_from_secs_f64(secs).ok()).unwrap_or(Duration::from_secs(WALL_CLOCK_EPOCH_SECS))
}

/// The random seed for a call about `run_id`: the same run id, the same random stream.
pub fn seed_for(run_id: &str) -> [u8; 32] {
    Sha256::new().chain_update(b"runretry random v1\0").chain_update(run_id.as_bytes()).finalize().into()
}

/// The fixed wall clock, for `WasiCtxBuilder::wall_clock` (what WASI's own code reads, such as
/// file times; a policy's `wall-clock` calls go to the call's clock, see `link`).
pub(crate) struct FixedWallClock;

impl HostWallClock for FixedWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::from_secs(WALL_CLOCK_EPOCH_SECS)
    }
}

/// A sleep that is already over: the virtual clock moved when it was asked for.
struct Elapsed;

#[wasmtime_wasi::async_trait]
impl Pollable for Elapsed {
    async fn ready(&mut self) {}
}

/// Ends a call whose sleep would outlast its deadline (classified as `DeadlineExceeded`).
#[derive(Debug)]
pub(crate) struct SleptPastDeadline;

impl std::fmt::Display for SleptPastDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the policy asked to sleep past its deadline")
    }
}

impl std::error::Error for SleptPastDeadline {}

/// A request for more random bytes than [`MAX_RANDOM_BYTES`].
#[derive(Debug)]
pub(crate) struct TooManyRandomBytes(pub(crate) u64);

impl std::fmt::Display for TooManyRandomBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the policy asked for {} random bytes; at most {MAX_RANDOM_BYTES} per request", self.0)
    }
}

impl std::error::Error for TooManyRandomBytes {}

/// Virtual nanoseconds since the call began.
fn now<T: CallState>(store: &StoreContextMut<'_, T>) -> u64 {
    let env = store.data().call();
    let remaining = store.get_fuel().unwrap_or(0);
    env.fuel_budget.saturating_sub(remaining).saturating_add(env.slept_nanos)
}

/// Sleep until virtual time `until`: at once, or not at all when that is past the deadline.
fn sleep_until<T: CallState>(
    mut store: StoreContextMut<'_, T>,
    until: u64,
) -> wasmtime::Result<(Resource<DynPollable>,)> {
    let now = now(&store);
    let call = store.data_mut().call_mut();
    if until > call.deadline_nanos {
        return Err(wasmtime::Error::new(SleptPastDeadline));
    }
    call.slept_nanos = call.slept_nanos.saturating_add(until.saturating_sub(now));
    let table = store.data_mut().table();
    let elapsed = table.push(Elapsed)?;
    Ok((subscribe(table, elapsed)?,))
}

fn random_bytes<T: CallState>(store: &mut StoreContextMut<'_, T>, len: u64) -> wasmtime::Result<Vec<u8>> {
    if len > MAX_RANDOM_BYTES {
        return Err(wasmtime::Error::new(TooManyRandomBytes(len)));
    }
    let mut bytes = vec![0u8; len as usize];
    store.data_mut().call_mut().rng.fill_bytes(&mut bytes);
    Ok(bytes)
}

/// Replace WASI's clock and random functions in `linker` (already holding WASI p2) with the
/// deterministic ones above.
pub(crate) fn link<T: CallState>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);

    let mut clock = linker.instance(&format!("wasi:clocks/monotonic-clock@{WASI_VERSION}"))?;
    clock.func_wrap("now", |store, (): ()| Ok((now(&store),)))?;
    clock.func_wrap("resolution", |_, (): ()| Ok((1u64,)))?;
    clock.func_wrap("subscribe-duration", |store, (nanos,): (u64,)| {
        let until = now(&store).saturating_add(nanos);
        sleep_until(store, until)
    })?;
    clock.func_wrap("subscribe-instant", |store, (when,): (u64,)| sleep_until(store, when))?;

    let mut wall = linker.instance(&format!("wasi:clocks/wall-clock@{WASI_VERSION}"))?;
    wall.func_wrap("now", |store, (): ()| {
        let at = store.data().call().wall;
        Ok((Datetime { seconds: at.as_secs(), nanoseconds: at.subsec_nanos() },))
    })?;
    wall.func_wrap("resolution", |_, (): ()| Ok((Datetime { seconds: 0, nanoseconds: 1 },)))?;

    let mut random = linker.instance(&format!("wasi:random/random@{WASI_VERSION}"))?;
    random.func_wrap("get-random-bytes", |mut store, (len,): (u64,)| Ok((random_bytes(&mut store, len)?,)))?;
    random.func_wrap("get-random-u64", |mut store, (): ()| Ok((store.data_mut().call_mut().rng.next_u64(),)))?;

    let mut insecure = linker.instance(&format!("wasi:random/insecure@{WASI_VERSION}"))?;
    insecure
        .func_wrap("get-insecure-random-bytes", |mut store, (len,): (u64,)| Ok((random_bytes(&mut store, len)?,)))?;
    insecure
        .func_wrap("get-insecure-random-u64", |mut store, (): ()| Ok((store.data_mut().call_mut().rng.next_u64(),)))?;

    let mut seed = linker.instance(&format!("wasi:random/insecure-seed@{WASI_VERSION}"))?;
    seed.func_wrap("insecure-seed", |mut store, (): ()| {
        let rng = &mut store.data_mut().call_mut().rng;
        Ok(((rng.next_u64(), rng.next_u64()),))
    })?;

    linker.allow_shadowing(false);
    Ok(())
}
