//! Timing the read endpoints of the public API on the large table: the ones
//! a client pages through, at the first page and at a deep one.

use std::time::Instant;

use serde_json::Value;

use crate::load::percentile;
use crate::report::Latency;

/// Timed requests per endpoint, after one warm-up.
const SAMPLES: usize = 30;

/// A read endpoint and what its answer must hold.
pub(crate) struct Endpoint {
    /// The figure's key in the JSON output.
    pub(crate) name: &'static str,
    pub(crate) path: String,
    /// The array of the answer that holds the page, and its expected length:
    /// checked on the warm-up, so that an empty page is never what was timed.
    items: (&'static str, usize),
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
            items: ("records", 1),
        },
        Endpoint {
            name: "records_limit_1000",
            path: format!("{records_path}?limit=1000&page_num=1"),
            items: ("records", 1000),
        },
        Endpoint {
            name: "records_deep_page",
            path: format!("{records_path}?limit=1000&page_num={deep_page}"),
            items: ("records", 1000.min(records - (deep_page - 1) * 1000)),
        },
        Endpoint {
            name: "processes_first",
            path: "/v3/processes?limit=50&offset=0".into(),
            items: ("processes", 50.min(processes)),
        },
        Endpoint {
            name: "processes_deep",
            path: format!("/v3/processes?limit=50&offset={deep_offset}"),
            items: ("processes", 50.min(processes - deep_offset)),
        },
        Endpoint {
            name: "process_errors",
            path: format!("/v3/processes/{errors_of}/errors?limit=50"),
            items: ("errors", 50),
        },
    ]
}

/// Requests `e` once to warm up (and to check its answer), then
/// [`SAMPLES`] times in a row, each timed to the last byte of the body.
pub(crate) async fn time(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    e: &Endpoint,
) -> Result<Latency, String> {
    let url = format!("{base}{}", e.path);
    let get = || client.get(&url).header("api-key", key).send();
    let warm = get().await.map_err(|err| err.to_string())?;
    let status = warm.status();
    let body: Value = warm.json().await.map_err(|err| err.to_string())?;
    let (array, expected) = e.items;
    let got = body[array].as_array().map(Vec::len);
    if status != 200 || got != Some(expected) {
        return Err(format!(
            "GET {}: {status}, expected {expected} {array}, got {got:?}",
            e.path
        ));
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
        p50_ms: percentile(&ms, 0.5),
        p99_ms: percentile(&ms, 0.99),
        failed,
    })
}
