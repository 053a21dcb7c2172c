//! Reads a picture back, the way its tests look at it: the points of the
//! paths of a class, an attribute of the tags that start alike. Plain text
//! scanning of what `svg` writes (not a general SVG parser); public so the
//! integration tests read the pictures with the same eyes as the unit tests.

/// The points of every path of class exactly `class`.
pub fn points(svg: &str, class: &str) -> Vec<(f64, f64)> {
    svg.split(&format!(r#"class="{class}" d=""#))
        .skip(1)
        .flat_map(|rest| {
            let d = rest.split('"').next().unwrap_or("");
            d.split(['M', 'L', 'Z'])
                .filter(|p| !p.trim().is_empty())
                .filter_map(|p| {
                    let (x, y) = p.trim().split_once(' ')?;
                    Some((x.parse::<f64>().ok()?, y.parse::<f64>().ok()?))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `name="..."` of every tag that starts with `start` (e.g. `<text class="rep"`).
///
/// Panics when such a tag has no `name`: a test asking for it wants to know.
pub fn attrs(svg: &str, start: &str, name: &str) -> Vec<String> {
    svg.split(start)
        .skip(1)
        .map(|rest| {
            let tag = rest.split('>').next().unwrap_or("");
            tag.split(&format!(r#" {name}=""#))
                .nth(1)
                .unwrap_or_else(|| panic!("no {name} in {tag}"))
                .split('"')
                .next()
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// The text after the first `open` up to the next `close`; `None` without
/// `open`.
pub fn section<'a>(svg: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let rest = svg.split_once(open)?.1;
    Some(rest.split(close).next().unwrap_or(rest))
}

/// The text inside every tag that starts with `start` (e.g. `<tspan
/// class="flaw"`), up to its first child or end tag.
pub fn texts<'a>(svg: &'a str, start: &str) -> Vec<&'a str> {
    svg.split(start)
        .skip(1)
        .map(|rest| {
            rest.split_once('>')
                .map_or("", |(_, inner)| inner.split('<').next().unwrap_or(""))
        })
        .collect()
}

/// The offset of the first `translate(X Y)` in `tag`.
///
/// Panics when there is none: a test asking for it wants to know.
pub fn translate(tag: &str) -> (f64, f64) {
    let inner = tag
        .split("translate(")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no translate(...) in {tag}"));
    let (x, y) = inner.split_once(' ').unwrap_or_else(|| panic!("translate({inner})"));
    (
        x.parse().unwrap_or_else(|_| panic!("x of translate({inner})")),
        y.parse().unwrap_or_else(|_| panic!("y of translate({inner})")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_and_attributes() {
        let svg = r#"<path class="legs" d="M1 2L3.5 4Z"/><path class="legs-x" d="M9 9"/><text class="rep" x="7" y="8">a</text>"#;
        assert_eq!(points(svg, "legs"), vec![(1.0, 2.0), (3.5, 4.0)]);
        assert_eq!(attrs(svg, "<text class=\"rep\"", "x"), vec!["7"]);
        assert_eq!(translate(r#"<g transform="translate(12.5 -3)">"#), (12.5, -3.0));
        assert_eq!(section(svg, r#"class="rep""#, "</text>"), Some(r#" x="7" y="8">a"#));
        assert_eq!(section(svg, "nothing", "<"), None);
        assert_eq!(texts(svg, "<text class=\"rep\""), vec!["a"]);
    }
}
