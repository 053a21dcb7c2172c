//! Which rows carry the upper back, the lumbar region and the sacrum.
//!
//! The configuration names them for a person lying where the mat expects
//! them. A person lying half a row lower rests the upper back on the first
//! lumbar row and leaves the upper row empty (a light person's upper back
//! is near its taxels' turn-on there); the seesaw then reads 1 whatever the
//! legs do, and no rep is ever seen. Lying half a row higher empties the
//! sacral row the same way. So once the person has settled, an end row that
//! carries next to nothing hands its role to the lumbar row next to it.

use super::DetectorConfig;

/// An end row carrying less than this share of the whole load is empty: the
/// upper back carries a fifth of it or more, the sacrum a quarter or more.
const EMPTY_SHARE: f32 = 0.05;

/// The rows of each part of the back for the person on the mat.
#[derive(Debug, Clone, PartialEq)]
pub struct Roles {
    pub upper: Vec<usize>,
    pub lumbar: Vec<usize>,
    pub sacral: Vec<usize>,
}

impl Roles {
    /// The configured rows.
    pub fn new(config: &DetectorConfig) -> Self {
        Roles {
            upper: config.upper_rows.clone(),
            lumbar: config.lumbar_rows.clone(),
            sacral: config.sacral_rows.clone(),
        }
    }

    /// Back to the configured rows (no allocation: never more rows than
    /// configured).
    pub fn reset(&mut self, config: &DetectorConfig) {
        for (mine, configured) in [
            (&mut self.upper, &config.upper_rows),
            (&mut self.lumbar, &config.lumbar_rows),
            (&mut self.sacral, &config.sacral_rows),
        ] {
            mine.clear();
            mine.extend_from_slice(configured);
        }
    }

    /// The configured rows, with an empty end's role moved onto the lumbar
    /// row nearest it, for a settled person whose rows carry `rows`. The
    /// lumbar region always keeps a row; at most one end moves.
    pub fn fit(&mut self, config: &DetectorConfig, rows: &[f32]) {
        self.reset(config);
        let total: f32 = rows.iter().sum();
        let load = |list: &[usize]| list.iter().map(|&r| rows.get(r).copied().unwrap_or(0.0)).sum::<f32>();
        if self.lumbar.len() < 2 || total <= 0.0 {
            return;
        }
        for upper_end in [true, false] {
            let end = if upper_end { &mut self.upper } else { &mut self.sacral };
            if end.is_empty() || load(end) >= EMPTY_SHARE * total {
                continue;
            }
            let distance = |r: usize| end.iter().map(|&e| e.abs_diff(r)).min().unwrap_or(usize::MAX);
            let Some(nearest) = (0..self.lumbar.len()).min_by_key(|&i| distance(self.lumbar[i])) else {
                return;
            };
            let row = self.lumbar.remove(nearest);
            end.clear();
            end.push(row);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fitted(rows: [f32; 4]) -> Roles {
        let config = DetectorConfig::default();
        let mut roles = Roles::new(&config);
        roles.fit(&config, &rows);
        roles
    }

    #[test]
    fn a_person_lying_where_expected_keeps_the_configured_rows() {
        assert_eq!(
            fitted([500.0, 600.0, 700.0, 800.0]),
            Roles::new(&DetectorConfig::default())
        );
    }

    #[test]
    fn an_empty_upper_row_hands_its_role_to_the_first_lumbar_row() {
        // A light person half a row lower: nothing on row 0, the upper back
        // on row 1 near its turn-on.
        let roles = fitted([4.0, 145.0, 650.0, 780.0]);
        assert_eq!((roles.upper, roles.lumbar, roles.sacral), (vec![1], vec![2], vec![3]));
    }

    #[test]
    fn an_empty_sacral_row_hands_its_role_to_the_last_lumbar_row() {
        let roles = fitted([700.0, 900.0, 600.0, 10.0]);
        assert_eq!((roles.upper, roles.lumbar, roles.sacral), (vec![0], vec![1], vec![2]));
    }

    #[test]
    fn the_lumbar_region_keeps_a_row_and_a_new_person_starts_from_the_configuration() {
        let config = DetectorConfig {
            lumbar_rows: vec![1],
            ..DetectorConfig::default()
        };
        let mut roles = Roles::new(&config);
        roles.fit(&config, &[0.0, 500.0, 500.0, 500.0]);
        assert_eq!(roles, Roles::new(&config));
        let config = DetectorConfig::default();
        let mut roles = Roles::new(&config);
        roles.fit(&config, &[4.0, 145.0, 650.0, 780.0]);
        roles.fit(&config, &[500.0, 600.0, 700.0, 800.0]);
        assert_eq!(roles, Roles::new(&config));
    }
}
