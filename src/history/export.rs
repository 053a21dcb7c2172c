//! The history as CSV, one row per rep: for `flatback history export` and
//! the coach's download.

use std::io::{self, Write};

use super::model::{Athlete, SessionRecord};
use crate::wire::payload::rfc3339;

pub const HEADER: &str = "athlete,name,gateway,mat,session_start,load,load_kg,set,rep,time,perfect,arched,rushed,bounce,descent_ms,ascent_ms,depth";

/// RFC 4180: a field with a comma, quote or line break is quoted.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn time(ms: i64) -> String {
    rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64))
}

pub fn write_csv(out: &mut impl Write, sessions: &[SessionRecord], athletes: &[Athlete]) -> io::Result<()> {
    writeln!(out, "{HEADER}")?;
    for s in sessions {
        let name = s
            .athlete
            .as_ref()
            .and_then(|id| athletes.iter().find(|a| &a.id == id))
            .map_or("", |a| a.name.as_str());
        for r in &s.reps {
            writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                field(s.athlete.as_deref().unwrap_or("")),
                field(name),
                field(&s.key.gateway),
                field(&s.key.mat),
                time(s.started_ms),
                field(&s.load.label()),
                s.load.kg,
                r.set,
                r.rep,
                time(r.time_ms),
                r.perfect,
                r.arched,
                r.rushed,
                r.bounce,
                r.descent_ms,
                r.ascent_ms.map_or(String::new(), |v| v.to_string()),
                r.depth.map_or(String::new(), |v| format!("{v:.3}")),
            )?;
        }
    }
    Ok(())
}

/// `YYYY-MM-DD` as ms since the Unix epoch at 00:00 UTC.
pub fn parse_day(day: &str) -> Result<i64, String> {
    let bad = || format!("\"{day}\": expected a day as YYYY-MM-DD");
    let parts: Vec<&str> = day.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return Err(bad()) };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    Ok(crate::wire::payload::days_from_civil(y, m, d) * 86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::figures::tests::{session_of, MONDAY};
    use crate::history::model::{Load, Plan};

    #[test]
    fn days() {
        assert_eq!(parse_day("1970-01-01"), Ok(0));
        assert_eq!(parse_day("2026-11-02"), Ok(MONDAY));
        assert!(parse_day("2026-13-01").is_err());
        assert!(parse_day("yesterday").is_err());
    }

    #[test]
    fn one_row_per_rep_with_a_header_and_quoted_names() {
        let load = Load {
            text: "2 kg, dumbbell".into(),
            kg: 2.0,
        };
        let s = session_of(MONDAY, &load, &[&[(true, 3100), (false, 2500)]]);
        let a = Athlete {
            id: "a-1".into(),
            name: "Ana \"the back\" Lee".into(),
            secret: "s".into(),
            load: load.clone(),
            plan: Plan::default(),
            created_ms: 0,
        };
        let mut out = Vec::new();
        write_csv(&mut out, &[s], &[a]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], HEADER);
        assert!(
            lines[1]
                .starts_with("a-1,\"Ana \"\"the back\"\" Lee\",g,m,2026-11-02T00:00:00.000Z,\"2 kg, dumbbell\",2,1,1,"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].contains(",false,true,false,false,2500,1500,0.700"),
            "{}",
            lines[2]
        );
    }
}
