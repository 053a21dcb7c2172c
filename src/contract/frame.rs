//! Frames of the taxel grid and the one trait every frame source implements.
//!
//! A recording, the simulator and (with the hardware issue) the SPI sampler
//! all yield the same `Frame`, so the detector never knows where frames come
//! from.

use std::fmt;

/// Shape of a taxel grid: `rows` along the spine (row 0 toward the head),
/// `cols` across the body (left to right).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Grid {
    pub rows: usize,
    pub cols: usize,
}

impl Grid {
    /// The reference mat of the contract: 4 x 4.
    pub const REFERENCE: Grid = Grid { rows: 4, cols: 4 };

    pub fn new(rows: usize, cols: usize) -> Self {
        Grid { rows, cols }
    }

    /// Number of taxels.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row-major index of the taxel at (`row`, `col`).
    pub fn index(&self, row: usize, col: usize) -> usize {
        row * self.cols + col
    }

    /// (row, col) of a row-major index.
    pub fn position(&self, index: usize) -> (usize, usize) {
        (index / self.cols, index % self.cols)
    }

    /// Column names of the recording header: `rRcC`, row-major.
    pub fn taxel_names(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.len()).map(move |i| {
            let (r, c) = self.position(i);
            format!("r{r}c{c}")
        })
    }
}

impl fmt::Display for Grid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.rows, self.cols)
    }
}

/// One scan of the grid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Microseconds on the sampler's monotonic clock (strictly increasing).
    pub t_us: u64,
    /// Raw ADC counts, row-major, `grid.len()` of them.
    pub counts: Vec<u16>,
}

impl Frame {
    /// A zeroed frame for `grid`, to be filled by `FrameSource::next_into`.
    pub fn zeroed(grid: Grid) -> Self {
        Frame {
            t_us: 0,
            counts: vec![0; grid.len()],
        }
    }

    /// Time in whole milliseconds, as events carry it (`t_us / 1000`).
    pub fn t_ms(&self) -> u64 {
        self.t_us / 1000
    }
}

/// Why a source could not deliver a frame.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0}")]
    Recording(String),
    #[error("sampler: {0}")]
    Sampler(String),
}

/// Anything that yields frames of one fixed grid.
///
/// `next_into` fills a caller-owned frame so that the steady state allocates
/// nothing per frame.
pub trait FrameSource {
    fn grid(&self) -> Grid;
    /// Fills `frame` with the next frame. `Ok(false)` means the stream ended.
    fn next_into(&mut self, frame: &mut Frame) -> Result<bool, SourceError>;
}

impl<S: FrameSource + ?Sized> FrameSource for Box<S> {
    fn grid(&self) -> Grid {
        (**self).grid()
    }
    fn next_into(&mut self, frame: &mut Frame) -> Result<bool, SourceError> {
        (**self).next_into(frame)
    }
}
