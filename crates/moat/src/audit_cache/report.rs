//! The audit's outputs as text: a CSV of every timed sample and an SVG plot of the two empirical
//! distributions (hand-written SVG: a few lines of XML cost the binary nothing).

use std::fmt::Write;

use super::trials::Kind;

/// One timed request (B's request of a trial).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Position in the interleaved plan, from 0.
    pub trial: usize,
    pub kind: Kind,
    /// Time to first token, in milliseconds.
    pub ttft_ms: f64,
    /// `usage.prompt_tokens_details.cached_tokens`, when the endpoint reported it.
    pub cached_tokens: Option<u64>,
}

/// `trial,kind,ttft_ms,cached_tokens` with one line per sample.
pub fn csv(samples: &[Sample]) -> String {
    let mut out = String::from("trial,kind,ttft_ms,cached_tokens\n");
    for s in samples {
        let _ = writeln!(
            out,
            "{},{},{:.3},{}",
            s.trial,
            s.kind.as_str(),
            s.ttft_ms,
            s.cached_tokens.map(|c| c.to_string()).unwrap_or_default()
        );
    }
    out
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// Both empirical CDFs, time to first token on x, fraction of trials on y.
pub fn svg(hits: &[f64], misses: &[f64], title: &str) -> String {
    let max = hits
        .iter()
        .chain(misses)
        .copied()
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.05;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |v: f64| LEFT + v / max * plot_w;
    let y = |f: f64| TOP + (1.0 - f) * plot_h;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    // Axes and ticks.
    let _ = writeln!(
        out,
        r#"<path d="M{LEFT},{TOP} L{LEFT},{} L{},{}" stroke="black" fill="none"/>"#,
        TOP + plot_h,
        LEFT + plot_w,
        TOP + plot_h
    );
    for k in 0..=5 {
        let v = max * f64::from(k) / 5.0;
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{:.1}</text>"#,
            x(v),
            TOP + plot_h + 18.0,
            v
        );
        let f = f64::from(k) / 5.0;
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{f:.1}</text>"#,
            LEFT - 6.0,
            y(f) + 4.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">time to first token (ms)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 10.0
    );
    let _ = writeln!(
        out,
        r#"<text x="14" y="{:.1}" text-anchor="middle" transform="rotate(-90 14 {:.1})">fraction of trials</text>"#,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    for (label, values, colour, row) in [
        ("hit trials", hits, "#1f77b4", 0.0),
        ("miss trials", misses, "#ff7f0e", 1.0),
    ] {
        let _ = writeln!(
            out,
            r#"<path d="{}" stroke="{colour}" stroke-width="2" fill="none"/>"#,
            ecdf_path(values, &x, &y)
        );
        let ly = TOP + 10.0 + row * 18.0;
        let _ = writeln!(
            out,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{label} (n={})</text>"#,
            LEFT + plot_w - 150.0,
            LEFT + plot_w - 125.0,
            LEFT + plot_w - 118.0,
            ly + 4.0,
            values.len()
        );
    }
    out.push_str("</svg>\n");
    out
}

/// The step function of one ECDF as an SVG path.
fn ecdf_path(values: &[f64], x: &dyn Fn(f64) -> f64, y: &dyn Fn(f64) -> f64) -> String {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len().max(1) as f64;
    let mut d = format!("M{:.1},{:.1}", x(0.0), y(0.0));
    for (i, value) in v.iter().enumerate() {
        let _ = write!(d, " H{:.1} V{:.1}", x(*value), y((i + 1) as f64 / n));
    }
    d
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_has_one_line_per_sample() {
        let samples = [
            Sample {
                trial: 0,
                kind: Kind::Hit,
                ttft_ms: 5.25,
                cached_tokens: Some(190),
            },
            Sample {
                trial: 1,
                kind: Kind::Miss,
                ttft_ms: 40.0,
                cached_tokens: None,
            },
        ];
        assert_eq!(
            csv(&samples),
            "trial,kind,ttft_ms,cached_tokens\n0,hit,5.250,190\n1,miss,40.000,\n"
        );
    }

    #[test]
    fn svg_draws_both_steps_and_escapes_the_title() {
        let out = svg(&[1.0, 2.0], &[10.0, 20.0, 30.0], "p < 1e-8 & shared");
        assert!(out.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(out.trim_end().ends_with("</svg>"));
        assert!(out.contains("p &lt; 1e-8 &amp; shared"));
        assert!(out.contains("hit trials (n=2)") && out.contains("miss trials (n=3)"));
        // Two ECDF paths: one step (H then V) per sample.
        assert_eq!(out.matches(" H").count(), 5, "{out}");
    }
}
