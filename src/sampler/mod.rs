//! The sampler: a dedicated thread that scans the grid on a fixed period and
//! hands frames to the rest of the program through a lock-free ring.
//!
//! - The loop sleeps to absolute deadlines on CLOCK_MONOTONIC
//!   (`clock_nanosleep(TIMER_ABSTIME)`); each deadline is the previous plus
//!   the period, so the rate never drifts. A cycle that ends past the next
//!   deadline is *late*; the deadlines it missed are skipped (no burst of
//!   catch-up scans), keeping the phase.
//! - Where the process may, the thread runs under SCHED_FIFO and memory is
//!   locked; where not, it says so once (`warn`) and runs normally.
//! - Each frame is stamped with the wake-up time in microseconds since the
//!   sampler started, strictly increasing.
//! - Frames go into a `ringbuf` SPSC ring of fixed-size [`RawFrame`]s: the
//!   thread never blocks and never allocates per frame. When the ring is full
//!   the frame is dropped and counted as an *overrun*.
//! - The consumer ([`FrameReceiver`]) sleeps until woken: a `Condvar` for the
//!   blocking side (it is a [`FrameSource`]), a `tokio::sync::Notify` for
//!   [`FrameReceiver::recv`]. The producer only takes the lock when a
//!   blocking consumer is actually waiting.
//! - [`SamplerStats`]: achieved rate, wake-up jitter p50/p99/max (from a
//!   fixed histogram), late cycles, overruns; published every 100 ms through
//!   a mutex the sampler only `try_lock`s.

pub mod histogram;
pub mod rt;

use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

use crate::contract::frame::{Frame, FrameSource, Grid, SourceError};
use histogram::JitterHistogram;

/// Most taxels a sampled frame holds (frames in the ring are fixed-size).
pub const MAX_TAXELS: usize = 128;

/// One scan of the whole grid, however it is wired.
pub trait GridScan: Send + 'static {
    fn grid(&self) -> Grid;
    /// Largest count a taxel can read (1023 or 4095).
    fn full_scale(&self) -> u16;
    /// Fills `counts` (row-major, `grid().len()` of them).
    fn scan(&mut self, counts: &mut [u16]) -> Result<(), ScanError>;
}

/// A scan failed: `what` names the part (a device, a row), `message` says how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {message}")]
pub struct ScanError {
    pub what: String,
    pub message: String,
}

/// A frame as it sits in the ring: fixed size, no heap.
#[derive(Debug, Clone, Copy)]
pub struct RawFrame {
    pub t_us: u64,
    len: u16,
    counts: [u16; MAX_TAXELS],
}

impl RawFrame {
    pub fn counts(&self) -> &[u16] {
        &self.counts[..usize::from(self.len)]
    }

    /// Copies into a [`Frame`] (no allocation once `frame` has the grid's
    /// size).
    pub fn copy_into(&self, frame: &mut Frame) {
        frame.t_us = self.t_us;
        frame.counts.clear();
        frame.counts.extend_from_slice(self.counts());
    }
}

/// How to run the sampler.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerConfig {
    /// Frames per second; `None` scans back to back as fast as the bus
    /// allows (benchmarks).
    pub rate_hz: Option<f64>,
    /// Frames the ring holds (the consumer may lag this much).
    pub ring_frames: usize,
    /// SCHED_FIFO priority to ask for (and lock memory); 0 doesn't ask.
    pub realtime_priority: u8,
    /// Scans failing in a row before the sampler gives up (and the
    /// receiver reports the error).
    pub max_failures_in_a_row: u32,
}

impl SamplerConfig {
    pub fn at(rate_hz: f64) -> Self {
        SamplerConfig {
            rate_hz: Some(rate_hz),
            // About a second of frames at the usual rates.
            ring_frames: 1024,
            realtime_priority: 50,
            max_failures_in_a_row: 100,
        }
    }

    pub fn unpaced() -> Self {
        SamplerConfig {
            rate_hz: None,
            realtime_priority: 0,
            ..SamplerConfig::at(1.0)
        }
    }
}

/// A snapshot of how the sampler is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SamplerStats {
    pub target_hz: Option<f64>,
    /// Frames scanned (pushed to the ring or dropped as overruns).
    pub frames: u64,
    /// Frames dropped because the ring was full.
    pub overruns: u64,
    /// Cycles that ended past the next deadline.
    pub late: u64,
    /// Deadlines skipped after late cycles.
    pub skipped: u64,
    pub scan_errors: u64,
    /// Seconds from the first frame to the last.
    pub elapsed_s: f64,
    /// Frames per second over `elapsed_s`.
    pub rate_hz: f64,
    /// Wake-up time past the deadline, microseconds.
    pub jitter_p50_us: f64,
    pub jitter_p99_us: f64,
    pub jitter_max_us: f64,
    /// Whether SCHED_FIFO was granted.
    pub realtime: bool,
}

impl SamplerStats {
    /// One line for logs and `flatback check`.
    pub fn summary(&self) -> String {
        format!(
            "{:.1} frames/s{} | jitter p50 {:.0} us, p99 {:.0} us, max {:.0} us | {} late, {} overruns, {} scan errors{}",
            self.rate_hz,
            self.target_hz.map_or(String::new(), |t| format!(" (target {t})")),
            self.jitter_p50_us,
            self.jitter_p99_us,
            self.jitter_max_us,
            self.late,
            self.overruns,
            self.scan_errors,
            if self.realtime { "" } else { " | normal scheduling" }
        )
    }
}

/// What the sampler thread and the receiver share.
struct SamplerShared {
    grid: Grid,
    full_scale: u16,
    stop: AtomicBool,
    /// The thread has ended (stopped, or failed): no more frames will come.
    finished: AtomicBool,
    /// A blocking consumer is (about to be) waiting on `wake`.
    waiting: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
    notify: tokio::sync::Notify,
    stats: Mutex<SamplerStats>,
    error: Mutex<Option<ScanError>>,
}

impl SamplerShared {
    /// Wakes whoever waits for frames; cheap when nobody does.
    fn wake_consumer(&self) {
        self.notify.notify_one();
        // Pairs with the fence in `FrameReceiver::wait`: either the consumer
        // sees the new frame before sleeping, or we see it waiting.
        fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) {
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            self.wake.notify_all();
        }
    }
}

/// The running sampler thread. Dropping it stops the thread.
pub struct Sampler {
    shared: Arc<SamplerShared>,
    thread: Option<JoinHandle<()>>,
}

/// Why the sampler could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("a {0} grid has more than {MAX_TAXELS} taxels")]
    GridTooLarge(Grid),
    #[error("sampler rate {0} Hz: must be positive and finite")]
    BadRate(f64),
    #[error("starting the sampler thread: {0}")]
    Spawn(std::io::Error),
}

impl Sampler {
    /// Starts scanning `scan` on its own thread.
    pub fn start<S: GridScan>(scan: S, config: SamplerConfig) -> Result<(Sampler, FrameReceiver), StartError> {
        let grid = scan.grid();
        if grid.len() > MAX_TAXELS {
            return Err(StartError::GridTooLarge(grid));
        }
        if let Some(r) = config.rate_hz {
            if !(r.is_finite() && r > 0.0) {
                return Err(StartError::BadRate(r));
            }
        }
        let (prod, cons) = HeapRb::<RawFrame>::new(config.ring_frames.max(1)).split();
        let shared = Arc::new(SamplerShared {
            grid,
            full_scale: scan.full_scale(),
            stop: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            waiting: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            notify: tokio::sync::Notify::new(),
            stats: Mutex::new(SamplerStats {
                target_hz: config.rate_hz,
                ..SamplerStats::default()
            }),
            error: Mutex::new(None),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("flatback-sampler".into())
            .spawn(move || run(scan, config, prod, &thread_shared))
            .map_err(StartError::Spawn)?;
        Ok((
            Sampler {
                shared: Arc::clone(&shared),
                thread: Some(thread),
            },
            FrameReceiver { cons, shared },
        ))
    }

    /// The latest published statistics (at most ~100 ms old).
    pub fn stats(&self) -> SamplerStats {
        *self.shared.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the thread has ended (a persistent scan error stops it).
    pub fn is_finished(&self) -> bool {
        self.shared.finished.load(Ordering::Acquire)
    }

    /// Stops the thread and returns the final statistics. Frames already in
    /// the ring stay readable.
    pub fn stop(mut self) -> SamplerStats {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            // A panic in the scanner has already been reported by the
            // thread; the receiver sees `finished`.
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Marks the thread finished (and wakes the consumer) however it ends,
/// panics included.
struct FinishGuard<'a>(&'a SamplerShared);

impl Drop for FinishGuard<'_> {
    fn drop(&mut self) {
        self.0.finished.store(true, Ordering::Release);
        self.0.notify.notify_one();
        fence(Ordering::SeqCst);
        let _guard = self.0.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.0.wake.notify_all();
    }
}

/// The sampler loop.
fn run<S: GridScan>(mut scan: S, config: SamplerConfig, mut prod: HeapProd<RawFrame>, shared: &SamplerShared) {
    let _finish = FinishGuard(shared);
    let realtime = config.rate_hz.is_some() && config.realtime_priority > 0 && go_realtime(config.realtime_priority);
    let period_ns = config.rate_hz.map(|r| (1e9 / r).round().max(1.0) as u64);
    let n = shared.grid.len();
    let mut frame = RawFrame {
        t_us: 0,
        len: n as u16,
        counts: [0; MAX_TAXELS],
    };
    let mut jitter = JitterHistogram::default();
    let mut stats = SamplerStats {
        target_hz: config.rate_hz,
        realtime,
        ..SamplerStats::default()
    };
    let t0 = rt::monotonic_ns();
    let mut deadline = t0;
    let mut first_ns = None;
    let mut last_ns = t0;
    let mut last_t_us = None;
    let mut last_publish = t0;
    let mut failures = 0u32;
    while !shared.stop.load(Ordering::Acquire) {
        let woke = match period_ns {
            Some(_) => {
                rt::sleep_until_ns(deadline);
                let now = rt::monotonic_ns();
                jitter.record(now.saturating_sub(deadline));
                now
            }
            None => rt::monotonic_ns(),
        };
        match scan.scan(&mut frame.counts[..n]) {
            Ok(()) => {
                failures = 0;
                let mut t_us = (woke - t0) / 1000;
                if let Some(last) = last_t_us {
                    t_us = t_us.max(last + 1);
                }
                last_t_us = Some(t_us);
                frame.t_us = t_us;
                first_ns.get_or_insert(woke);
                last_ns = woke;
                stats.frames += 1;
                if prod.try_push(frame).is_err() {
                    stats.overruns += 1;
                }
                shared.wake_consumer();
            }
            Err(e) => {
                stats.scan_errors += 1;
                failures += 1;
                if failures == 1 {
                    tracing::warn!("sampler: scan failed: {e}");
                }
                if failures >= config.max_failures_in_a_row.max(1) {
                    tracing::error!("sampler: {failures} scans in a row failed, stopping: {e}");
                    *shared.error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    break;
                }
            }
        }
        if let Some(period) = period_ns {
            deadline += period;
            let now = rt::monotonic_ns();
            if now > deadline {
                // Late: skip the deadlines already gone, keep the phase.
                stats.late += 1;
                let missed = (now - deadline) / period;
                stats.skipped += missed;
                deadline += missed * period;
            }
        }
        if woke - last_publish >= 100_000_000 {
            last_publish = woke;
            fill(&mut stats, &jitter, first_ns, last_ns);
            if let Ok(mut s) = shared.stats.try_lock() {
                *s = stats;
            }
        }
    }
    fill(&mut stats, &jitter, first_ns, last_ns);
    *shared.stats.lock().unwrap_or_else(|p| p.into_inner()) = stats;
}

fn fill(stats: &mut SamplerStats, jitter: &JitterHistogram, first_ns: Option<u64>, last_ns: u64) {
    let elapsed = first_ns.map_or(0.0, |f| (last_ns - f) as f64 * 1e-9);
    stats.elapsed_s = elapsed;
    stats.rate_hz = if elapsed > 0.0 {
        (stats.frames.saturating_sub(1)) as f64 / elapsed
    } else {
        0.0
    };
    stats.jitter_p50_us = jitter.quantile_us(0.5);
    stats.jitter_p99_us = jitter.quantile_us(0.99);
    stats.jitter_max_us = jitter.max_us();
}

/// Asks for SCHED_FIFO and locked memory; says what it could not get.
fn go_realtime(priority: u8) -> bool {
    let fifo = match rt::set_fifo(priority) {
        Ok(()) => {
            tracing::info!("sampler: SCHED_FIFO priority {priority}");
            true
        }
        Err(e) => {
            tracing::warn!(
                "sampler: SCHED_FIFO priority {priority} not permitted ({e}); running with normal scheduling, \
                 expect more jitter (allow it with LimitRTPRIO=99 in the systemd unit, or run as root)"
            );
            false
        }
    };
    // Process-wide and slow (it faults in every mapped page, stalling other
    // threads meanwhile): once, before any sampler starts its clock.
    static LOCKED: std::sync::Once = std::sync::Once::new();
    LOCKED.call_once(|| {
        if let Err(e) = rt::lock_memory() {
            tracing::warn!(
                "sampler: could not lock memory ({e}); page faults may delay frames (LimitMEMLOCK=infinity in \
                 the systemd unit allows it)"
            );
        }
    });
    fifo
}

/// The consuming end of the ring.
pub struct FrameReceiver {
    cons: HeapCons<RawFrame>,
    shared: Arc<SamplerShared>,
}

impl FrameReceiver {
    /// The next frame if one is waiting.
    pub fn try_recv(&mut self) -> Option<RawFrame> {
        self.cons.try_pop()
    }

    /// Frames waiting in the ring.
    pub fn backlog(&self) -> usize {
        self.cons.occupied_len()
    }

    pub fn full_scale(&self) -> u16 {
        self.shared.full_scale
    }

    /// The latest published statistics.
    pub fn stats(&self) -> SamplerStats {
        *self.shared.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Ok(false)` when the sampler stopped cleanly, its error when it failed.
    fn ended(&self) -> Result<bool, SourceError> {
        match &*self.shared.error.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(SourceError::Sampler(e.to_string())),
            None => Ok(false),
        }
    }

    /// A frame if one is waiting (`Ok(true)`), the end of the stream if the
    /// sampler has ended and the ring is drained; `None`: wait and look again.
    fn poll(&mut self, frame: &mut Frame) -> Option<Result<bool, SourceError>> {
        if let Some(f) = self.cons.try_pop() {
            f.copy_into(frame);
            return Some(Ok(true));
        }
        if self.shared.finished.load(Ordering::Acquire) {
            // Frames pushed just before the end.
            if let Some(f) = self.cons.try_pop() {
                f.copy_into(frame);
                return Some(Ok(true));
            }
            return Some(self.ended());
        }
        None
    }

    /// Blocks until a frame comes (`Ok(true)`), or the sampler has ended and
    /// the ring is drained.
    pub fn recv_blocking(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        loop {
            if let Some(done) = self.poll(frame) {
                return done;
            }
            self.wait();
        }
    }

    fn wait(&mut self) {
        let guard = self.shared.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.shared.waiting.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let guard = if self.cons.is_empty() && !self.shared.finished.load(Ordering::Acquire) {
            self.shared.wake.wait(guard).unwrap_or_else(|p| p.into_inner())
        } else {
            guard
        };
        self.shared.waiting.store(false, Ordering::Relaxed);
        drop(guard);
    }

    /// Waits (asynchronously) for the next frame; `Ok(false)` once the
    /// sampler has ended and the ring is drained.
    pub async fn recv(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        loop {
            // A handle of our own: `notified` borrows it while `poll` needs
            // `self` mutably.
            let shared = Arc::clone(&self.shared);
            let notified = shared.notify.notified();
            tokio::pin!(notified);
            // Registered before looking, so a frame pushed in between still
            // wakes us.
            notified.as_mut().enable();
            if let Some(done) = self.poll(frame) {
                return done;
            }
            notified.await;
        }
    }
}

/// The receiver is a frame source like a recording or the simulator: the
/// detector, `record` and `check` read it the same way.
impl FrameSource for FrameReceiver {
    fn grid(&self) -> Grid {
        self.shared.grid
    }

    fn next_into(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        self.recv_blocking(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scan that fills a counter and can be told to fail.
    struct Counting {
        grid: Grid,
        n: u16,
        fail_from: Option<u16>,
    }

    impl GridScan for Counting {
        fn grid(&self) -> Grid {
            self.grid
        }
        fn full_scale(&self) -> u16 {
            1023
        }
        fn scan(&mut self, counts: &mut [u16]) -> Result<(), ScanError> {
            if self.fail_from.is_some_and(|f| self.n >= f) {
                return Err(ScanError {
                    what: "test".into(),
                    message: "unplugged".into(),
                });
            }
            self.n += 1;
            counts.fill(self.n);
            Ok(())
        }
    }

    #[test]
    fn frames_arrive_in_order_and_a_failing_scan_ends_with_its_error() {
        let scan = Counting {
            grid: Grid::new(2, 3),
            n: 0,
            fail_from: Some(50),
        };
        let config = SamplerConfig {
            max_failures_in_a_row: 5,
            ..SamplerConfig::at(2000.0)
        };
        let (sampler, mut rx) = Sampler::start(scan, config).unwrap();
        let mut frame = Frame::zeroed(Grid::new(2, 3));
        let mut k = 0;
        let err = loop {
            match rx.next_into(&mut frame) {
                Ok(true) => {
                    k += 1;
                    assert_eq!(frame.counts, vec![k; 6]);
                }
                Ok(false) => panic!("the sampler must report its failure"),
                Err(e) => break e,
            }
        };
        assert_eq!(k, 50);
        assert!(err.to_string().contains("test: unplugged"), "{err}");
        assert!(sampler.is_finished());
        let stats = sampler.stop();
        assert_eq!((stats.frames, stats.scan_errors), (50, 5));
    }

    #[test]
    fn the_async_side_is_woken_and_sees_the_end() {
        let scan = Counting {
            grid: Grid::new(1, 1),
            n: 0,
            fail_from: None,
        };
        let (sampler, mut rx) = Sampler::start(scan, SamplerConfig::at(1000.0)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut frame = Frame::zeroed(Grid::new(1, 1));
        let got = rt.block_on(async {
            let mut got = Vec::new();
            while got.len() < 20 {
                assert!(rx.recv(&mut frame).await.unwrap());
                got.push(frame.counts[0]);
            }
            got
        });
        assert_eq!(got, (1..=20).collect::<Vec<u16>>());
        let stats = sampler.stop();
        let more = rt.block_on(async {
            let mut n = 0;
            while rx.recv(&mut frame).await.unwrap() {
                n += 1;
            }
            n
        });
        assert_eq!(20 + more, stats.frames);
    }

    #[test]
    fn grids_beyond_the_fixed_frame_are_refused() {
        let scan = Counting {
            grid: Grid::new(12, 12),
            n: 0,
            fail_from: None,
        };
        assert!(matches!(
            Sampler::start(scan, SamplerConfig::at(100.0)),
            Err(StartError::GridTooLarge(_))
        ));
    }
}
