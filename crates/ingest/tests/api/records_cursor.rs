//! The records list's `cursor` (an extension of Brevo's API): pages read
//! by following `next_cursor` or the `Link` header hold every record once,
//! in order, and a cursor is refused where it cannot mean anything.

use objectsync_testkit::{Org, TestApp, spawn_app};
use serde_json::{Value, json};

/// Status, `Link` header and body of a GET of the records list.
async fn get(app: &TestApp, org: &Org, query: &str) -> (u16, Option<String>, Value) {
    let resp = app
        .get(&org.key, &format!("/v3/objects/vehicle/records{query}"))
        .await;
    let status = resp.status().as_u16();
    let link = resp
        .headers()
        .get("link")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, link, resp.json().await.unwrap())
}

fn ids(v: &Value) -> Vec<i64> {
    v["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["identifiers"]["id"].as_i64().unwrap())
        .collect()
}

async fn with_records(app: &TestApp, org: &Org, from: usize, to: usize) {
    let records: Vec<Value> = (from..to)
        .map(|i| json!({"identifiers": {"ext_id": format!("v{i}")}, "attributes": {"price": i}}))
        .collect();
    app.upsert_and_wait(org, "vehicle", json!(records)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_cursors_reads_every_record_once_in_order() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    with_records(&app, &org, 0, 25).await;

    for (sort, ascending) in [("", false), ("&sort=desc", false), ("&sort=asc", true)] {
        let (status, link, first) = get(&app, &org, &format!("?limit=10&cursor={sort}")).await;
        assert_eq!(status, 200, "{first}");
        assert_eq!(first["count"], 25);
        let mut seen = ids(&first);
        let mut next = first["next_cursor"].as_str().map(str::to_owned);
        assert!(link.is_some_and(|l| l.ends_with("rel=\"next\"")));
        let mut pages = 1;
        while let Some(cursor) = next {
            // The cursor carries the order: no `sort` needed.
            let (status, link, page) = get(&app, &org, &format!("?limit=10&cursor={cursor}")).await;
            assert_eq!(status, 200, "{page}");
            seen.extend(ids(&page));
            next = page["next_cursor"].as_str().map(str::to_owned);
            assert_eq!(link.is_some(), next.is_some(), "{page}");
            if next.is_none() {
                assert!(page["next_cursor"].is_null(), "{page}");
            }
            pages += 1;
        }
        assert_eq!(pages, 3, "25 records in pages of 10");
        assert_eq!(seen.len(), 25);
        let mut sorted = seen.clone();
        sorted.sort_unstable();
        if !ascending {
            sorted.reverse();
        }
        sorted.dedup();
        assert_eq!(seen, sorted, "every record once, in order ({sort})");
    }

    // A page of exactly the rest ends the walk without an empty page after it.
    let (_, _, first) = get(&app, &org, "?limit=20&cursor=&sort=asc").await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (_, link, last) = get(&app, &org, &format!("?limit=5&cursor={cursor}")).await;
    assert_eq!(ids(&last).len(), 5);
    assert!(last["next_cursor"].is_null() && link.is_none(), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_created_during_an_ascending_walk_are_read_too() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    with_records(&app, &org, 0, 10).await;
    let (_, _, first) = get(&app, &org, "?limit=10&cursor=&sort=asc").await;
    let cursor = first["next_cursor"].as_str().map(str::to_owned);
    assert_eq!(cursor, None, "ten records: one page");
    // The last page of an earlier walk, followed by its Link once more
    // records exist: a full page links on.
    let (_, link, _) = get(&app, &org, "?limit=5&cursor=&sort=asc").await;
    let link = link.expect("a full page links to the next");
    let (_, _, second) = get(&app, &org, "?limit=5&cursor=&sort=asc").await;
    let cursor = second["next_cursor"].as_str().unwrap().to_owned();
    with_records(&app, &org, 10, 13).await;
    let (_, _, rest) = get(&app, &org, &format!("?limit=100&cursor={cursor}")).await;
    let names: Vec<&str> = rest["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["identifiers"]["ext_id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12"]);
    // The Link is the next page's address, as the client would follow it.
    let target = link
        .strip_prefix('<')
        .and_then(|l| l.split_once('>'))
        .map(|(url, _)| url.to_owned())
        .unwrap();
    assert!(target.starts_with("/v3/objects/vehicle/records?limit=5&sort=asc&cursor="));
    let resp = app.get(&org.key, &target).await;
    assert_eq!(resp.status(), 200);
    let followed: Value = resp.json().await.unwrap();
    assert_eq!(followed["records"][0]["identifiers"]["ext_id"], "v5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_num_answers_stay_as_brevo_shapes_them() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    with_records(&app, &org, 0, 3).await;
    let (status, link, full) = get(&app, &org, "?limit=2&page_num=1").await;
    assert_eq!(status, 200);
    assert!(full.get("next_cursor").is_none(), "{full}");
    // A full page links on with a cursor, which a client may ignore.
    let link = link.expect("a full page links on");
    assert!(link.contains("cursor="), "{link}");
    let (_, link, last) = get(&app, &org, "?limit=2&page_num=2").await;
    assert!(
        link.is_none() && last.get("next_cursor").is_none(),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_are_refused_where_they_mean_nothing() {
    let app = spawn_app().await;
    let org = app.org_with_vehicles().await;
    with_records(&app, &org, 0, 3).await;
    let (_, _, first) = get(&app, &org, "?limit=1&cursor=").await;
    let desc = first["next_cursor"].as_str().unwrap().to_owned();
    for (q, code) in [
        (
            "?limit=1&page_num=1&cursor=".to_owned(),
            "invalid_parameter",
        ),
        (
            "?limit=1&cursor=not-a-cursor".to_owned(),
            "invalid_parameter",
        ),
        (
            format!("?limit=1&cursor={desc}&sort=asc"),
            "invalid_parameter",
        ),
        ("?cursor=".to_owned(), "missing_parameter"),
        ("?limit=1001&cursor=".to_owned(), "out_of_range"),
    ] {
        let (status, _, body) = get(&app, &org, &q).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some(code)),
            "{q}: {body}"
        );
    }
    // The cursor's own order, sent again, is fine.
    let (status, _, _) = get(&app, &org, &format!("?limit=1&cursor={desc}&sort=desc")).await;
    assert_eq!(status, 200);
}
