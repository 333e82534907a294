//! Small charts drawn on the server as SVG, so that the browser needs no
//! chart code: bars scaled to the largest value, each with its label and
//! value as a tooltip, coloured by the page's theme (`style/main.css`,
//! `.chart`), and a text summary for screen readers.

use std::fmt::Write;

/// Width and height of the drawing, in SVG units.
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 140.0;
/// Room for the axis labels.
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;

/// Escapes text for SVG content and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A bar chart of `bars` (label, value), left to right. `what` names the
/// values ("access tokens handed out") for the summary read aloud.
pub fn bar_chart(what: &str, bars: &[(String, u64)]) -> String {
    let max = bars.iter().map(|(_, v)| *v).max().unwrap_or(0);
    let total: u64 = bars.iter().map(|(_, v)| *v).sum();
    let summary = match (bars.first(), bars.last()) {
        (Some((first, _)), Some((last, _))) => {
            let busiest = bars
                .iter()
                .filter(|(_, v)| *v == max && max > 0)
                .map(|(l, _)| l.as_str())
                .next();
            match busiest {
                Some(label) => format!(
                    "{what} from {first} to {last}: {total} in all, at most {max} ({label})"
                ),
                None => format!("{what} from {first} to {last}: none"),
            }
        }
        _ => format!("{what}: none"),
    };
    let plot_w = WIDTH - LEFT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = if bars.is_empty() {
        plot_w
    } else {
        plot_w / bars.len() as f64
    };
    let bar_w = (slot * 0.8).max(1.0);
    let mut svg = String::with_capacity(512 + bars.len() * 160);
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(&summary)
    );
    let baseline = TOP + plot_h;
    let _ = write!(
        svg,
        r#"<line class="chart-axis" x1="{LEFT}" y1="{baseline}" x2="{WIDTH}" y2="{baseline}"/>"#
    );
    let _ = write!(
        svg,
        r#"<text class="chart-label" x="{}" y="{}" text-anchor="end">{max}</text><text class="chart-label" x="{}" y="{baseline}" text-anchor="end">0</text>"#,
        LEFT - 6.0,
        TOP + 10.0,
        LEFT - 6.0,
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let h = if max == 0 {
            0.0
        } else {
            (*value as f64 / max as f64) * plot_h
        };
        // A used day stays visible however small next to the busiest.
        let h = if *value > 0 { h.max(1.5) } else { h };
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let _ = write!(
            svg,
            r#"<rect class="chart-bar" x="{x:.1}" y="{:.1}" width="{bar_w:.1}" height="{h:.1}"><title>{}: {value}</title></rect>"#,
            baseline - h,
            escape(label)
        );
    }
    if let (Some((first, _)), Some((last, _))) = (bars.first(), bars.last()) {
        let y = HEIGHT - 4.0;
        let _ = write!(
            svg,
            r#"<text class="chart-label" x="{LEFT}" y="{y}">{}</text><text class="chart-label" x="{WIDTH}" y="{y}" text-anchor="end">{}</text>"#,
            escape(first),
            escape(last)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// One bar of a stacked chart: its total, and the part of it drawn in the
/// second colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub label: String,
    pub total: u64,
    pub part: u64,
}

/// A bar chart whose bars show a total and, at their foot, a part of it
/// (renewals and the failed ones). `names` names the total and the part.
pub fn stacked_bar_chart(what: &str, bars: &[Bar], names: (&str, &str)) -> String {
    let max = bars.iter().map(|b| b.total).max().unwrap_or(0);
    let total: u64 = bars.iter().map(|b| b.total).sum();
    let parts: u64 = bars.iter().map(|b| b.part).sum();
    let summary = match (bars.first(), bars.last()) {
        (Some(first), Some(last)) => format!(
            "{what} from {} to {}: {total} {}, {parts} {}, at most {max} in one",
            first.label, last.label, names.0, names.1
        ),
        _ => format!("{what}: none"),
    };
    let plot_w = WIDTH - LEFT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / bars.len().max(1) as f64;
    let bar_w = (slot * 0.8).max(1.0);
    let scale = |v: u64| {
        if max == 0 {
            0.0
        } else {
            let h = (v as f64 / max as f64) * plot_h;
            if v > 0 { h.max(1.5) } else { h }
        }
    };
    let baseline = TOP + plot_h;
    let mut svg = String::with_capacity(512 + bars.len() * 240);
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(&summary)
    );
    let _ = write!(
        svg,
        r#"<line class="chart-axis" x1="{LEFT}" y1="{baseline}" x2="{WIDTH}" y2="{baseline}"/><text class="chart-label" x="{}" y="{}" text-anchor="end">{max}</text><text class="chart-label" x="{}" y="{baseline}" text-anchor="end">0</text>"#,
        LEFT - 6.0,
        TOP + 10.0,
        LEFT - 6.0,
    );
    for (i, b) in bars.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
        let h = scale(b.total);
        let p = scale(b.part.min(b.total)).min(h);
        let _ = write!(
            svg,
            r#"<g><title>{}: {} {}, {} {}</title><rect class="chart-bar" x="{x:.1}" y="{:.1}" width="{bar_w:.1}" height="{:.1}"/><rect class="chart-bar-part" x="{x:.1}" y="{:.1}" width="{bar_w:.1}" height="{p:.1}"/></g>"#,
            escape(&b.label),
            b.total,
            escape(names.0),
            b.part,
            escape(names.1),
            baseline - h,
            h - p,
            baseline - p,
        );
    }
    if let (Some(first), Some(last)) = (bars.first(), bars.last()) {
        let y = HEIGHT - 4.0;
        let _ = write!(
            svg,
            r#"<text class="chart-label" x="{LEFT}" y="{y}">{}</text><text class="chart-label" x="{WIDTH}" y="{y}" text-anchor="end">{}</text>"#,
            escape(&first.label),
            escape(&last.label)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::{Bar, bar_chart, stacked_bar_chart};

    #[test]
    fn a_stacked_bar_shows_its_part_at_its_foot() {
        let bars = [
            Bar {
                label: "10:00 UTC".into(),
                total: 8,
                part: 2,
            },
            Bar {
                label: "11:00 UTC".into(),
                total: 0,
                part: 0,
            },
        ];
        let svg = stacked_bar_chart("Renewals", &bars, ("renewals", "failed"));
        // 8 of 8 fill the 112-unit plot: 84 above, 28 (2 failed) at the foot.
        assert!(svg.contains(r#"<title>10:00 UTC: 8 renewals, 2 failed</title><rect class="chart-bar" x="71.8" y="8.0" width="222.4" height="84.0"/><rect class="chart-bar-part" x="71.8" y="92.0" width="222.4" height="28.0"/>"#), "{svg}");
        assert!(svg.contains(
            r#"aria-label="Renewals from 10:00 UTC to 11:00 UTC: 8 renewals, 2 failed, at most 8 in one""#
        ));
    }

    fn bars(values: &[u64]) -> Vec<(String, u64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("2026-12-{:02}", i + 1), *v))
            .collect()
    }

    #[test]
    fn each_value_is_a_bar_scaled_to_the_largest() {
        let svg = bar_chart("uses", &bars(&[0, 5, 10]));
        assert_eq!(svg.matches("<rect ").count(), 3);
        // The largest fills the plot's height, the empty one has none.
        assert!(
            svg.contains(r#"height="112.0"><title>2026-12-03: 10</title>"#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"height="0.0"><title>2026-12-01: 0</title>"#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"height="56.0"><title>2026-12-02: 5</title>"#),
            "{svg}"
        );
        assert!(svg.contains(
            r#"aria-label="uses from 2026-12-01 to 2026-12-03: 15 in all, at most 10 (2026-12-03)""#
        ));
    }

    #[test]
    fn nothing_used_is_said_and_labels_are_escaped() {
        let svg = bar_chart("uses", &[("<a & b>".to_owned(), 0)]);
        assert!(svg.contains("&lt;a &amp; b&gt;"));
        assert!(!svg.contains("<a & b>"));
        assert!(svg.contains("none"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }
}
