//! The page around every console view, and the small formatting helpers the
//! views share. Markup is built with `maud`, which escapes every value.

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::session::Session;

/// The stylesheet and script, embedded: the console works offline.
pub(crate) const CSS: &str = include_str!("assets/console.css");
pub(crate) const JS: &str = include_str!("assets/console.js");

/// The sections of the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Overview,
    Processes,
    DeadLetters,
    Organizations,
}

const SECTIONS: [(Section, &str, &str); 4] = [
    (Section::Overview, "/console", "Overview"),
    (Section::Processes, "/console/processes", "Processes"),
    (
        Section::DeadLetters,
        "/console/dead-letters",
        "Dead letters",
    ),
    (
        Section::Organizations,
        "/console/organizations",
        "Organizations",
    ),
];

/// A whole page.
pub(crate) fn page(
    title: &str,
    section: Option<Section>,
    session: Option<&Session>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · objectsync" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/console" { "objectsync" }
                    @if let Some(s) = session {
                        nav {
                            @for (sec, href, label) in SECTIONS {
                                a href=(href) class=[(section == Some(sec)).then_some("active")] { (label) }
                            }
                        }
                        form.logout method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            span.who { (s.who) }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A hidden CSRF field for a form of `session`.
pub(crate) fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// 1234567 → "1,234,567".
pub(crate) fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A time as UTC text, with how long ago in its tooltip.
pub(crate) fn time(t: DateTime<Utc>) -> Markup {
    let ago = Utc::now() - t;
    let ago = if ago.num_seconds() < 120 {
        format!("{} s ago", ago.num_seconds().max(0))
    } else if ago.num_minutes() < 120 {
        format!("{} min ago", ago.num_minutes())
    } else if ago.num_hours() < 48 {
        format!("{} h ago", ago.num_hours())
    } else {
        format!("{} days ago", ago.num_days())
    };
    html! { time datetime=(t.to_rfc3339()) title=(ago) { (t.format("%Y-%m-%d %H:%M:%S")) } }
}

pub(crate) fn maybe_time(t: Option<DateTime<Utc>>) -> Markup {
    match t {
        Some(t) => time(t),
        None => html! { span.muted { "—" } },
    }
}

/// Seconds as "850 ms" or "2.4 s".
pub(crate) fn seconds(s: Option<f64>) -> String {
    match s {
        None => "—".into(),
        Some(s) if s < 1.0 => format!("{:.0} ms", s * 1000.0),
        Some(s) => format!("{s:.1} s"),
    }
}

/// A process status as a coloured badge.
pub(crate) fn status(s: &str) -> Markup {
    html! { span class={"badge " (s)} { (s) } }
}

/// A bar chart, as inline SVG, of `values` (oldest first), with `label`
/// under it.
pub(crate) fn bars(values: &[i64], label: &str) -> Markup {
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let (w, h) = (600.0_f64, 120.0_f64);
    let step = w / values.len().max(1) as f64;
    let mut rects = String::new();
    for (i, v) in values.iter().enumerate() {
        let bh = (*v as f64 / max as f64) * (h - 4.0);
        rects.push_str(&format!(
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}</title></rect>"#,
            i as f64 * step + 1.0,
            h - bh,
            (step - 2.0).max(1.0),
            bh,
            count(*v)
        ));
    }
    html! {
        figure.chart {
            svg viewBox=(format!("0 0 {w} {h}")) preserveAspectRatio="none" role="img" aria-label=(label) {
                (PreEscaped(rects))
            }
            figcaption { (label) " (max " (count(max)) ")" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(-1000), "-1,000");
    }

    #[test]
    fn values_are_escaped() {
        let s = status("<script>");
        assert!(!s.into_string().contains("<script>"));
    }
}
