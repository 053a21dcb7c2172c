//! The pages, built into the binary: plain HTML, CSS and JavaScript, no
//! build step, nothing fetched from elsewhere.

pub const FLOOR: &str = include_str!("assets/floor.html");
pub const MAT: &str = include_str!("assets/mat.html");
pub const GRID: &str = include_str!("assets/grid.html");
pub const PICTURES: &str = include_str!("assets/pictures.html");
pub const CSS: &str = include_str!("assets/app.css");
pub const JS: &str = include_str!("assets/app.js");
