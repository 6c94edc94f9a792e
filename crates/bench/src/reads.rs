//! Timing the read endpoints of the public API on the large table (the ones
//! a client pages through, at the first page and at a deep one), and the
//! console's pages on the same tables.

use std::time::Instant;

use serde_json::Value;

use crate::load::percentile;
use crate::report::Latency;

/// Timed requests per endpoint, after one warm-up.
const SAMPLES: usize = 30;

/// What the warm-up's answer must hold, so that an empty page (or the
/// console's login form) is never what was timed. A console page whose list
/// may rightly be empty is checked for the logout button (a session's page).
pub(crate) enum Check {
    /// A JSON array of the answer and its length.
    Items(&'static str, usize),
    /// A piece of the page's HTML.
    Html(String),
}

/// A read endpoint and what its answer must hold.
pub(crate) struct Endpoint {
    /// The figure's key in the JSON output.
    pub(crate) name: &'static str,
    pub(crate) path: String,
    pub(crate) check: Check,
}

/// Who reads: an organization's API key, or a console session's cookie.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    Key(&'a str),
    Cookie(&'a str),
}

/// The endpoints: records of `object_type` (holding `records` records) one
/// at a time, a page of 1,000, and the page 97 % of the way in; the
/// organization's `processes` at offset 0 and 97 % of the way in; and the
/// first page of the errors of process `errors_of` (which has at least 50).
pub(crate) fn endpoints(
    object_type: &str,
    records: usize,
    processes: usize,
    errors_of: i64,
) -> Vec<Endpoint> {
    let deep_page = (records * 97 / 100 / 1000).max(1);
    let deep_offset = processes * 97 / 100;
    let records_path = format!("/v3/objects/{object_type}/records");
    vec![
        Endpoint {
            name: "records_limit_1",
            path: format!("{records_path}?limit=1&page_num=1"),
            check: Check::Items("records", 1),
        },
        Endpoint {
            name: "records_limit_1000",
            path: format!("{records_path}?limit=1000&page_num=1"),
            check: Check::Items("records", 1000),
        },
        Endpoint {
            name: "records_deep_page",
            path: format!("{records_path}?limit=1000&page_num={deep_page}"),
            check: Check::Items("records", 1000.min(records - (deep_page - 1) * 1000)),
        },
        Endpoint {
            name: "processes_first",
            path: "/v3/processes?limit=50&offset=0".into(),
            check: Check::Items("processes", 50.min(processes)),
        },
        Endpoint {
            name: "processes_deep",
            path: format!("/v3/processes?limit=50&offset={deep_offset}"),
            check: Check::Items("processes", 50.min(processes - deep_offset)),
        },
        Endpoint {
            name: "process_errors",
            path: format!("/v3/processes/{errors_of}/errors?limit=50"),
            check: Check::Items("errors", 50),
        },
    ]
}

/// The console's pages an operator opens, on the tables of the large stage:
/// the overview's live part (what every open overview fetches every few
/// seconds), the process list unfiltered, of one organization, of one status,
/// of a rare object type and of an earlier day; process `errors_of` (with its
/// errors), the dead letters, the organizations and organization `org_id`.
pub(crate) fn console_pages(org_id: i64, errors_of: i64) -> Vec<Endpoint> {
    let page = |name, path: String, html: &str| Endpoint {
        name,
        path,
        check: Check::Html(html.to_owned()),
    };
    let list = "/console/processes";
    vec![
        page(
            "console_overview_live",
            "/console/overview/live".into(),
            "applied-hour",
        ),
        page("console_processes", list.into(), "/console/processes/"),
        page(
            "console_processes_of_org",
            format!("{list}?org={org_id}"),
            "/console/processes/",
        ),
        page(
            "console_processes_failed",
            format!("{list}?status=failed"),
            "/console/logout",
        ),
        page(
            "console_processes_rare_type",
            format!("{list}?object_type=item"),
            "/console/logout",
        ),
        page(
            "console_processes_day_before",
            format!("{list}?before=2000-01-01T00:00"),
            "/console/logout",
        ),
        page(
            "console_process",
            format!("/console/processes/{org_id}/{errors_of}"),
            "big-rejected",
        ),
        page(
            "console_dead_letters",
            "/console/dead-letters".into(),
            "/console/logout",
        ),
        page(
            "console_organizations",
            "/console/organizations".into(),
            "/console/logout",
        ),
        page(
            "console_organization",
            format!("/console/organizations/{org_id}"),
            "big",
        ),
    ]
}

/// Logs in to the console at `base` as the bench, and gives the session's
/// cookie as a `Cookie` header's value.
pub(crate) async fn console_login(base: &str, admin_token: &str) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .post(format!("{base}/console/login"))
        .form(&[
            ("who", "bench"),
            ("token", admin_token),
            ("next", "/console"),
        ])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .filter(|_| resp.status() == 303)
        .ok_or_else(|| format!("console login: {}, no session cookie", resp.status()))?;
    Ok(cookie.to_owned())
}

/// Requests `e` once to warm up (and to check its answer), then
/// [`SAMPLES`] times in a row, each timed to the last byte of the body. The
/// warm-up is timed too: the first view of a console page after ingest
/// starts fills what later views reuse.
pub(crate) async fn time(
    client: &reqwest::Client,
    base: &str,
    auth: Auth<'_>,
    e: &Endpoint,
) -> Result<Latency, String> {
    let url = format!("{base}{}", e.path);
    let get = || {
        let req = client.get(&url);
        match auth {
            Auth::Key(key) => req.header("api-key", key),
            Auth::Cookie(cookie) => req.header("cookie", cookie),
        }
        .send()
    };
    let first = Instant::now();
    let warm = get().await.map_err(|err| err.to_string())?;
    let status = warm.status();
    let body = warm.text().await.map_err(|err| err.to_string())?;
    let first_ms = first.elapsed().as_secs_f64() * 1000.0;
    match &e.check {
        Check::Items(array, expected) => {
            let body: Value = serde_json::from_str(&body).map_err(|err| err.to_string())?;
            let got = body[array].as_array().map(Vec::len);
            if status != 200 || got != Some(*expected) {
                return Err(format!(
                    "GET {}: {status}, expected {expected} {array}, got {got:?}",
                    e.path
                ));
            }
        }
        Check::Html(piece) => {
            if status != 200 || !body.contains(piece.as_str()) {
                return Err(format!(
                    "GET {}: {status}, no '{piece}' in the page",
                    e.path
                ));
            }
        }
    }
    let mut ms = Vec::with_capacity(SAMPLES);
    let mut failed = 0;
    for _ in 0..SAMPLES {
        let sent = Instant::now();
        let resp = get().await.map_err(|err| err.to_string())?;
        let ok = resp.status() == 200;
        resp.bytes().await.map_err(|err| err.to_string())?;
        if ok {
            ms.push(sent.elapsed().as_secs_f64() * 1000.0);
        } else {
            failed += 1;
        }
    }
    Ok(Latency {
        first_ms,
        p50_ms: percentile(&ms, 0.5),
        p99_ms: percentile(&ms, 0.99),
        failed,
    })
}
