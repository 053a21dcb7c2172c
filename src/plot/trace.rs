//! A session's per-frame signals, kept in bounded memory for a plot (pure).
//!
//! Frames fall into equal time buckets that keep the minimum and maximum of
//! each signal and the mean of each taxel. When the buckets would outgrow
//! twice the plot's width, neighbours merge and the bucket doubles in
//! length, so an hour at 1 kHz costs as much memory as a minute. At the end
//! [`Trace::columns`] resamples the buckets to one per pixel column, min and
//! max kept, so every spike still shows.

use crate::detector::Probe;

/// One stretch of time: what the frames in it showed.
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// Frames that fell in it (0: a gap in the recording).
    pub frames: u32,
    /// Lumbar contact (share of the reference), min and max, over the frames
    /// where the person's reference was taken.
    pub contact: Option<(f32, f32)>,
    /// The rep signal (seesaw), min and max, over the frames with someone on
    /// the mat.
    pub seesaw: Option<(f32, f32)>,
    /// Some frame was in an arch.
    pub arch: bool,
    /// Per taxel: the sum of its reading as a share of full scale.
    pub load_sums: Vec<f32>,
}

impl Bucket {
    fn empty(taxels: usize) -> Self {
        Bucket {
            frames: 0,
            contact: None,
            seesaw: None,
            arch: false,
            load_sums: vec![0.0; taxels],
        }
    }

    fn merge(&mut self, other: &Bucket) {
        self.frames += other.frames;
        self.contact = widen(self.contact, other.contact);
        self.seesaw = widen(self.seesaw, other.seesaw);
        self.arch |= other.arch;
        for (a, b) in self.load_sums.iter_mut().zip(&other.load_sums) {
            *a += b;
        }
    }

    /// Mean load of taxel `i` (share of full scale).
    pub fn load(&self, i: usize) -> f32 {
        if self.frames == 0 {
            0.0
        } else {
            self.load_sums[i] / self.frames as f32
        }
    }
}

fn widen(a: Option<(f32, f32)>, b: Option<(f32, f32)>) -> Option<(f32, f32)> {
    match (a, b) {
        (Some((lo, hi)), Some((l2, h2))) => Some((lo.min(l2), hi.max(h2))),
        (x, None) | (None, x) => x,
    }
}

/// The accumulator.
#[derive(Debug, Clone)]
pub struct Trace {
    taxels: usize,
    full_scale: f32,
    max_buckets: usize,
    bucket_us: u64,
    t0_us: Option<u64>,
    last_us: u64,
    buckets: Vec<Bucket>,
}

impl Trace {
    /// `columns`: the width the trace will be drawn at; `full_scale`: the
    /// ADC's top count.
    pub fn new(columns: usize, taxels: usize, full_scale: u16) -> Self {
        Trace {
            taxels,
            full_scale: full_scale.max(1) as f32,
            max_buckets: 2 * columns.max(1),
            bucket_us: 1000,
            t0_us: None,
            last_us: 0,
            buckets: Vec::new(),
        }
    }

    /// Buckets held now (at most twice the columns).
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// First and last frame times.
    pub fn span_us(&self) -> Option<(u64, u64)> {
        self.t0_us.map(|t0| (t0, self.last_us))
    }

    /// One frame: its time, what the detector saw, its raw counts.
    pub fn push(&mut self, t_us: u64, probe: &Probe, counts: &[u16]) {
        let t0 = *self.t0_us.get_or_insert(t_us);
        self.last_us = self.last_us.max(t_us);
        let mut index = (t_us.saturating_sub(t0) / self.bucket_us) as usize;
        while index >= self.max_buckets {
            self.halve();
            index = (t_us.saturating_sub(t0) / self.bucket_us) as usize;
        }
        if self.buckets.len() <= index {
            self.buckets.resize(index + 1, Bucket::empty(self.taxels));
        }
        let b = &mut self.buckets[index];
        b.frames += 1;
        if probe.occupied {
            b.seesaw = widen(b.seesaw, Some((probe.seesaw, probe.seesaw)));
            if probe.settled {
                b.contact = widen(b.contact, Some((probe.contact, probe.contact)));
            }
        }
        b.arch |= probe.in_arch;
        for (sum, &c) in b.load_sums.iter_mut().zip(counts) {
            *sum += c as f32 / self.full_scale;
        }
    }

    /// Merges neighbouring buckets: twice as long, half as many.
    fn halve(&mut self) {
        self.bucket_us *= 2;
        let old = std::mem::take(&mut self.buckets);
        for pair in old.chunks(2) {
            let mut b = pair[0].clone();
            if let Some(next) = pair.get(1) {
                b.merge(next);
            }
            self.buckets.push(b);
        }
    }

    /// `n` columns over the whole span, each merging the buckets whose middle
    /// falls in it. Columns that no frame fell in have `frames == 0`.
    pub fn columns(&self, n: usize) -> Vec<Bucket> {
        let mut out = vec![Bucket::empty(self.taxels); n];
        let Some((t0, t1)) = self.span_us() else {
            return out;
        };
        let span = (t1 - t0 + 1) as f64;
        for (i, b) in self.buckets.iter().enumerate() {
            if b.frames == 0 {
                continue;
            }
            let mid = ((i as f64 + 0.5) * self.bucket_us as f64).min(span - 1.0);
            let col = ((mid / span * n as f64) as usize).min(n.saturating_sub(1));
            if let Some(c) = out.get_mut(col) {
                c.merge(b);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(contact: f32, seesaw: f32, in_arch: bool) -> Probe {
        Probe {
            occupied: true,
            settled: true,
            contact,
            seesaw,
            in_arch,
        }
    }

    #[test]
    fn memory_stays_bounded_and_extremes_survive() {
        let mut t = Trace::new(100, 2, 1023);
        // An hour at 1 kHz would be 3.6 M frames; 10 minutes show the shape.
        let frames = 600_000u64;
        for k in 0..frames {
            let spike = k == 123_456;
            let c = if spike { 0.1 } else { 1.0 };
            t.push(k * 1000, &probe(c, (k as f32 * 1e-4).sin(), spike), &[1023, 0]);
            assert!(t.bucket_count() <= 200);
        }
        assert!(t.bucket_count() > 100, "{}", t.bucket_count());
        let cols = t.columns(100);
        assert_eq!(cols.iter().map(|c| c.frames as u64).sum::<u64>(), frames);
        let spike_col = (123_456 * 100 / frames) as usize;
        for (i, c) in cols.iter().enumerate() {
            let (lo, hi) = c.contact.unwrap();
            assert_eq!(hi, 1.0);
            assert_eq!(lo == 0.1, i == spike_col, "column {i}: {lo}");
            assert_eq!(c.arch, i == spike_col);
            assert!((c.load(0) - 1.0).abs() < 1e-4 && c.load(1) == 0.0);
        }
        let (lo, hi) = cols[50].seesaw.unwrap();
        assert!(lo < hi);
    }

    #[test]
    fn gaps_and_empty_mats_are_left_empty() {
        let mut t = Trace::new(10, 1, 1023);
        let nobody = Probe {
            occupied: false,
            settled: false,
            contact: 1.0,
            seesaw: 0.3,
            in_arch: false,
        };
        for k in 0..100u64 {
            t.push(k * 10_000, &nobody, &[0]);
        }
        // A second with no frames, then someone lying down, not yet settled.
        for k in 200..300u64 {
            let p = Probe {
                occupied: true,
                settled: false,
                ..nobody
            };
            t.push(k * 10_000, &p, &[512]);
        }
        let cols = t.columns(10);
        assert_eq!(t.span_us(), Some((0, 2_990_000)));
        assert!(cols[..3]
            .iter()
            .all(|c| c.frames > 0 && c.seesaw.is_none() && c.contact.is_none()));
        assert!(
            cols[4..6].iter().all(|c| c.frames == 0),
            "{:?}",
            cols.iter().map(|c| c.frames).collect::<Vec<_>>()
        );
        assert!(cols[7..]
            .iter()
            .all(|c| c.seesaw == Some((0.3, 0.3)) && c.contact.is_none()));
        assert!((cols[9].load(0) - 512.0 / 1023.0).abs() < 1e-6);
        assert!(Trace::new(5, 1, 1023).columns(5).iter().all(|c| c.frames == 0));
    }
}
