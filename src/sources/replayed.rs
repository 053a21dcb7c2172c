//! A recording as a mat: played again from the start when it ends
//! (`repeat`), with timestamps that keep increasing.

use std::path::PathBuf;

use super::recording::{RecordingError, RecordingReader};
use crate::contract::frame::{Frame, FrameSource, Grid, SourceError};

pub struct Replayed {
    path: PathBuf,
    reader: RecordingReader,
    repeat: bool,
    offset_us: u64,
    last_us: u64,
}

impl Replayed {
    pub fn open(path: PathBuf, repeat: bool) -> Result<Replayed, RecordingError> {
        let reader = RecordingReader::open(&path)?;
        Ok(Replayed {
            path,
            reader,
            repeat,
            offset_us: 0,
            last_us: 0,
        })
    }
}

impl FrameSource for Replayed {
    fn grid(&self) -> Grid {
        self.reader.grid()
    }

    fn next_into(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        if !self.reader.next_into(frame)? {
            if !self.repeat {
                return Ok(false);
            }
            self.reader = RecordingReader::open(&self.path)?;
            self.offset_us = self.last_us + 1_000_000;
            if !self.reader.next_into(frame)? {
                return Ok(false);
            }
        }
        frame.t_us += self.offset_us;
        self.last_us = frame.t_us;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::recording::RecordingWriter;

    #[test]
    fn a_repeated_recording_plays_again_with_increasing_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let mut w = RecordingWriter::create(&path, Grid::new(1, 2)).unwrap();
        for t in [10u64, 20, 30] {
            w.write_frame(&Frame {
                t_us: t,
                counts: vec![t as u16, 1],
            })
            .unwrap();
        }
        w.close().unwrap();
        let times = |repeat: bool, n: usize| {
            let mut r = Replayed::open(path.clone(), repeat).unwrap();
            let mut f = Frame::zeroed(r.grid());
            let mut out = Vec::new();
            while out.len() < n && r.next_into(&mut f).unwrap() {
                out.push((f.t_us, f.counts[0]));
            }
            out
        };
        assert_eq!(times(false, 10), [(10, 10), (20, 20), (30, 30)]);
        assert_eq!(
            times(true, 5),
            [(10, 10), (20, 20), (30, 30), (1_000_040, 10), (1_000_050, 20)]
        );
    }
}
