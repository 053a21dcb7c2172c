//! Runs the detector over a frame source as fast as the CPU allows.

use crate::contract::event::Event;
use crate::contract::frame::{Frame, FrameSource, SourceError};
use crate::detector::Detector;

/// Counts of a finished run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    pub frames: u64,
    pub events: u64,
}

/// Feeds every frame of `source` to `detector` and hands each event to
/// `sink`, in emission order; closes open sessions at the end of the stream.
/// Events emitted before a source error have already been handed over.
pub fn run(
    source: &mut dyn FrameSource,
    detector: &mut Detector,
    mut sink: impl FnMut(&Event),
) -> Result<RunStats, SourceError> {
    let mut frame = Frame::zeroed(source.grid());
    let mut events = Vec::with_capacity(16);
    let mut stats = RunStats::default();
    let mut flush = |events: &mut Vec<Event>, stats: &mut RunStats| {
        for e in events.drain(..) {
            stats.events += 1;
            sink(&e);
        }
    };
    while source.next_into(&mut frame)? {
        stats.frames += 1;
        detector.push(&frame, &mut events);
        flush(&mut events, &mut stats);
    }
    detector.finish(&mut events);
    flush(&mut events, &mut stats);
    Ok(stats)
}

/// Runs a whole source and collects the events (for tests and tools).
pub fn collect(source: &mut dyn FrameSource, detector: &mut Detector) -> Result<Vec<Event>, SourceError> {
    let mut out = Vec::new();
    run(source, detector, |e| out.push(e.clone()))?;
    Ok(out)
}
