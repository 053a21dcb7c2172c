//! `flatback eval`: the detector scored on simulated cases, and its speed.

use anyhow::Result;

use crate::cli::EvalArgs;
use crate::config::Config;
use crate::detector::Detector;
use crate::frame::{Frame, FrameSource};
use crate::sim::{Scenario, Simulator};

pub fn run(args: &EvalArgs) -> Result<()> {
    eval(args.cases, args.seed, args.verbose)
}

fn eval(cases: u64, seed: u64, verbose: bool) -> Result<()> {
    let mut total = crate::score::Score::default();
    let mut frames = 0u64;
    let mut busy = std::time::Duration::ZERO;
    for k in 0..cases {
        let scenario = Scenario::random(seed + k);
        let mut sim = Simulator::new(&scenario);
        let truth = sim.truth().clone();
        // Frames are generated up front so only the detector is timed.
        let mut all = Vec::new();
        let mut frame = Frame::zeroed(sim.grid());
        while sim.next_into(&mut frame)? {
            all.push(frame.clone());
        }
        let mut detector = Detector::new(sim.grid(), Config::default().detector).map_err(anyhow::Error::msg)?;
        let mut events = Vec::new();
        let start = std::time::Instant::now();
        for f in &all {
            detector.push(f, &mut events);
        }
        detector.finish(&mut events);
        busy += start.elapsed();
        frames += all.len() as u64;
        let score = crate::score::Score::case(&events, &truth);
        if verbose {
            println!(
                "seed {:>5} {:<11} {:>6.1} Hz  {}",
                seed + k,
                scenario.kind,
                scenario.rate_hz,
                score.summary()
            );
        }
        total.add(&score);
    }
    println!("{cases} cases: {}", total.summary());
    println!(
        "detector: {frames} frames in {:.3} s = {:.0} frames/s ({:.2} us/frame)",
        busy.as_secs_f64(),
        frames as f64 / busy.as_secs_f64().max(1e-9),
        busy.as_secs_f64() * 1e6 / frames.max(1) as f64
    );
    Ok(())
}
