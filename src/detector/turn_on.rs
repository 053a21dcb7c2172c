//! An FSR conducts only above some force: a taxel carrying little (a light
//! person, the edge of the lumbar region) reads near its turn-on and drops
//! to nothing when its load falls a little below it. Read as zero, a wobble
//! that takes a fifth of the load off such a row looks like half of it gone.
//!
//! So a taxel that switched off is taken to have lost what its row's taxels
//! that are still on lost since that moment, never more than it carried on
//! its last frame on (the load just under its turn-on is unknown, and no
//! larger). A row whose every taxel is off takes what the taxels still on in
//! its group lost (a light person's lumbar row may rest on one taxel; the
//! lumbar rows lose load together); when the whole group is off, it reads
//! zero: an arch empties it completely.
//!
//! A taxel that reads off carries less than its turn-on, whatever it carried
//! on its last frame on (at 50 Hz an arch can take a lumbar row from far
//! above its turn-on to off between two frames): no estimate exceeds the
//! mat's turn-on, the least load any taxel carried on its last frame on.

/// Readings below this share of full scale are an open FSR (noise on a
/// long lead reaches a few tens of counts of 10 bits); the reference mat's
/// taxels turn on at 130 or so.
const OFF_SHARE: f32 = 40.0 / 1023.0;

/// One healthy taxel of a row on this frame: its index, counts and force.
pub type Taxel = (usize, u16, f32);

/// Per taxel: its force (and counts) on its last frame on, and the force of
/// its row's and its group's taxels that were on when it switched off.
#[derive(Debug, Clone, Default)]
pub struct TurnOn {
    off_counts: u16,
    /// The least force a taxel carried on its last frame on, among switch-
    /// offs from at least twice the open level (the mat's, kept across
    /// people).
    turn_on_force: f32,
    last_on: Vec<f32>,
    last_on_counts: Vec<u16>,
    row_on_at_off: Vec<f32>,
    group_on_at_off: Vec<f32>,
    on: Vec<bool>,
}

impl TurnOn {
    /// For `taxels` taxels read at `full` counts full scale.
    pub fn new(taxels: usize, full: u16) -> Self {
        TurnOn {
            off_counts: (OFF_SHARE * full as f32).round() as u16,
            turn_on_force: f32::INFINITY,
            last_on: vec![0.0; taxels],
            last_on_counts: vec![0; taxels],
            row_on_at_off: vec![0.0; taxels],
            group_on_at_off: vec![0.0; taxels],
            on: vec![false; taxels],
        }
    }

    /// Forgets every taxel's last load (the person left the mat).
    pub fn reset(&mut self) {
        self.last_on.fill(0.0);
        self.row_on_at_off.fill(0.0);
        self.group_on_at_off.fill(0.0);
        self.on.fill(false);
    }

    /// The force of the taxels that are on among `taxels`: a row's, or a
    /// group's for [`TurnOn::row`].
    pub fn on_force(&self, taxels: &[Taxel]) -> f32 {
        taxels.iter().filter(|t| t.1 >= self.off_counts).map(|t| t.2).sum()
    }

    /// The force of one row, from its healthy `taxels`; `group` is the
    /// force of the taxels on in its group now (the row's own when `None`).
    pub fn row(&mut self, taxels: &[Taxel], group: Option<f32>) -> f32 {
        let on_sum = self.on_force(taxels);
        let group = group.unwrap_or(on_sum);
        let mut sum = on_sum;
        for &(i, counts, force) in taxels {
            if counts >= self.off_counts {
                self.last_on[i] = force;
                self.last_on_counts[i] = counts;
                self.on[i] = true;
                continue;
            }
            if self.on[i] {
                self.on[i] = false;
                if self.last_on_counts[i] >= 2 * self.off_counts {
                    self.turn_on_force = self.turn_on_force.min(self.last_on[i]);
                }
                self.row_on_at_off[i] = on_sum;
                self.group_on_at_off[i] = group;
            }
            let (row_before, group_before) = (self.row_on_at_off[i], self.group_on_at_off[i]);
            let kept = if on_sum > 0.0 && row_before > 0.0 {
                on_sum / row_before
            } else if group_before > 0.0 {
                group / group_before
            } else {
                0.0
            };
            sum += (self.last_on[i] * kept.min(1.0)).min(self.turn_on_force);
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: &mut TurnOn, counts: [u16; 4]) -> f32 {
        // Force proxy: the counts themselves, enough for the arithmetic.
        let taxels: Vec<Taxel> = counts.iter().enumerate().map(|(i, &c)| (i, c, c as f32)).collect();
        t.row(&taxels, None)
    }

    #[test]
    fn a_taxel_switching_off_loses_what_the_rest_of_its_row_lost() {
        let mut t = TurnOn::new(4, 1023);
        assert_eq!(row(&mut t, [100, 200, 200, 100]), 600.0);
        // A wobble: the strong taxels lose a tenth, the weak ones switch off.
        let r = row(&mut t, [1, 180, 180, 1]);
        assert_eq!(r, 360.0 + 200.0);
        let r = row(&mut t, [1, 160, 160, 1]);
        assert!((r - (320.0 + 200.0 * 320.0 / 360.0)).abs() < 1e-3, "{r}");
        // Back on: read as it is.
        assert_eq!(row(&mut t, [90, 200, 200, 95]), 585.0);
    }

    #[test]
    fn a_row_with_every_taxel_off_reads_zero_and_a_taxel_never_on_adds_nothing() {
        let mut t = TurnOn::new(4, 1023);
        assert_eq!(row(&mut t, [1, 200, 200, 100]), 500.0);
        assert_eq!(row(&mut t, [1, 1, 1, 1]), 0.0);
        assert_eq!(row(&mut t, [1, 100, 1, 1]), 100.0 + 0.0);
        t.reset();
        assert_eq!(row(&mut t, [1, 1, 1, 1]), 0.0);
    }

    #[test]
    fn a_row_with_every_taxel_off_takes_what_its_group_lost() {
        let mut t = TurnOn::new(4, 1023);
        let row = |t: &mut TurnOn, counts: [u16; 2], group: f32| {
            let taxels: Vec<Taxel> = counts.iter().enumerate().map(|(i, &c)| (i, c, c as f32)).collect();
            t.row(&taxels, Some(group))
        };
        assert_eq!(row(&mut t, [150, 1], 1000.0), 150.0);
        // The row's one taxel switches off while the group keeps 80 %.
        assert_eq!(row(&mut t, [1, 1], 800.0), 150.0);
        assert!((row(&mut t, [1, 1], 600.0) - 150.0 * 0.75).abs() < 1e-3);
        // The whole group off: nothing.
        assert_eq!(row(&mut t, [1, 1], 0.0), 0.0);
    }

    #[test]
    fn the_open_level_follows_the_adc_s_full_scale() {
        let (ten, twelve) = (TurnOn::new(1, 1023), TurnOn::new(1, 4095));
        let at = |t: &TurnOn, c: u16| t.on_force(&[(0, c, 1.0)]);
        assert_eq!((at(&ten, 39), at(&ten, 40)), (0.0, 1.0));
        // 100 counts of 12 bits are 25 of 10: noise on an open FSR.
        assert_eq!((at(&twelve, 100), at(&twelve, 160)), (0.0, 1.0));
    }

    #[test]
    fn the_estimate_never_exceeds_the_last_load_on() {
        let mut t = TurnOn::new(4, 1023);
        row(&mut t, [100, 200, 200, 100]);
        row(&mut t, [1, 150, 150, 100]);
        // The rest of the row loads up again: the off taxel stays at most
        // what it carried.
        assert_eq!(row(&mut t, [1, 300, 300, 200]), 800.0 + 100.0);
    }

    #[test]
    fn an_estimate_never_exceeds_the_mat_s_turn_on() {
        let mut t = TurnOn::new(8, 1023);
        // A taxel turns off from 130 somewhere on the mat: its turn-on.
        let taxels = |counts: [u16; 4], first: usize| -> Vec<Taxel> {
            counts
                .iter()
                .enumerate()
                .map(|(k, &c)| (first + k, c, c as f32))
                .collect()
        };
        t.row(&taxels([130, 300, 300, 300], 0), None);
        t.row(&taxels([1, 300, 300, 300], 0), None);
        // Another row drops two taxels from 350 to off between two frames
        // (an arch at 50 Hz) while its others keep their load: each reads
        // at most 130, not the 350 it carried.
        t.row(&taxels([350, 350, 300, 300], 4), None);
        assert_eq!(t.row(&taxels([1, 1, 300, 300], 4), None), 600.0 + 2.0 * 130.0);
    }
}
