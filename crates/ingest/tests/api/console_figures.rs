//! The figures of the console's overview and organizations pages: what
//! ended in the last hour and day, counted once whether a minute was read
//! fresh or kept from an earlier view.

use objectsync_model::OrgId;
use objectsync_store::{ended, operations};
use objectsync_testkit::{Org, TestApp, console_card, spawn_app_with};

/// The cells of the organizations table's row of `org`, tags stripped.
fn org_row(html: &str, org: &Org) -> Vec<String> {
    let href = format!("href=\"/console/organizations/{}\"", org.id);
    let row = html
        .split("<tr")
        .find(|r| r.contains(&href))
        .unwrap_or_else(|| panic!("no row for organization {}", org.id));
    row.split("<td")
        .skip(1)
        .map(|cell| {
            let mut text = String::new();
            let mut in_tag = true; // the rest of the <td ...> tag
            for ch in cell.split("</td>").next().unwrap().chars() {
                match ch {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    c if !in_tag => text.push(c),
                    _ => {}
                }
            }
            text
        })
        .collect()
}

/// Processes inserted straight into the table, as if applied: `n` of
/// `org`'s `object_type`, that ended `ago` before now, `latency_ms` after
/// they were accepted.
pub(crate) struct Ended<'a> {
    pub(crate) object_type: &'a str,
    pub(crate) n: i64,
    pub(crate) ago: &'a str,
    pub(crate) failed: bool,
    pub(crate) records: i32,
    pub(crate) latency_ms: i32,
}

impl Default for Ended<'_> {
    fn default() -> Self {
        Self {
            object_type: "vehicle",
            n: 1,
            ago: "0 seconds",
            failed: false,
            records: 1,
            latency_ms: 1000,
        }
    }
}

impl Ended<'_> {
    pub(crate) async fn insert(&self, app: &TestApp, org: &Org) {
        let client = app.pool.get().await.unwrap();
        client
            .execute(
                "insert into processes (org_id, name, object_type, records_total,
                                        records_processed, status, created_at, completed_at)
                 select $1, 'OBJECT_RECORDS_UPSERT', $2, $3, $3,
                        case when $4 then 'failed' else 'completed' end::process_status,
                        t - $5::int4 * interval '1 ms', t
                   from (select now() - $6::text::interval as t) as s,
                        generate_series(1, $7::int8)",
                &[
                    &org.id,
                    &self.object_type,
                    &self.records,
                    &self.failed,
                    &self.latency_ms,
                    &self.ago,
                    &self.n,
                ],
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_last_hour_and_day_count_each_ended_process_once() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    let other = app.org_with_vehicles().await;
    let cookie = app.console_cookie().await;

    Ended {
        ago: "30 minutes",
        records: 100,
        ..Ended::default()
    }
    .insert(&app, &org)
    .await;
    Ended {
        ago: "20 minutes",
        records: 50,
        ..Ended::default()
    }
    .insert(&app, &org)
    .await;
    Ended {
        ago: "10 minutes",
        failed: true,
        records: 0,
        latency_ms: 0,
        ..Ended::default()
    }
    .insert(&app, &org)
    .await;
    Ended {
        ago: "5 hours",
        records: 1000,
        ..Ended::default()
    }
    .insert(&app, &org)
    .await;
    Ended {
        ago: "25 hours",
        records: 9000,
        ..Ended::default()
    }
    .insert(&app, &org)
    .await;
    Ended {
        ago: "3 minutes",
        records: 7,
        ..Ended::default()
    }
    .insert(&app, &other)
    .await;

    // Read twice: the first view reads the settled minutes and keeps them,
    // the second adds nothing twice.
    for _ in 0..2 {
        let live = app.console_page(&cookie, "/console/overview/live").await;
        assert_eq!(console_card(&live, "applied-hour"), "157");
        assert_eq!(console_card(&live, "latency-p50"), "1.0 s");
        assert_eq!(console_card(&live, "failed-day"), "1");
        let orgs = app.console_page(&cookie, "/console/organizations").await;
        // open, ended, failed, records applied (24 h)
        assert_eq!(org_row(&orgs, &org)[3..7], ["0", "4", "1", "1,150"]);
        assert_eq!(org_row(&orgs, &other)[3..7], ["0", "1", "0", "7"]);
    }

    // What ends now is read fresh, and once.
    Ended {
        ago: "0 seconds",
        records: 3,
        latency_ms: 40,
        ..Ended::default()
    }
    .insert(&app, &other)
    .await;
    for _ in 0..2 {
        let live = app.console_page(&cookie, "/console/overview/live").await;
        assert_eq!(console_card(&live, "applied-hour"), "160");
        let orgs = app.console_page(&cookie, "/console/organizations").await;
        assert_eq!(org_row(&orgs, &other)[3..7], ["0", "2", "0", "10"]);
    }
}

#[tokio::test]
async fn a_transaction_that_has_written_holds_settling_back_a_reader_does_not() {
    let app = spawn_app_with(0, |_| {}).await;
    let mut open = app.pool.get().await.unwrap();
    let tx = open.transaction().await.unwrap();
    let began: chrono::DateTime<chrono::Utc> =
        tx.query_one("select now()", &[]).await.unwrap().get(0);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let other = app.pool.get().await.unwrap();
    // Reading only, it cannot have stamped anything.
    let oldest = ended::oldest_writer_start(&other).await.unwrap();
    assert!(oldest > began, "{oldest}: a reader held it back");
    // Once it has an id (as an update gives it), it holds settling back.
    tx.execute("select pg_current_xact_id()", &[])
        .await
        .unwrap();
    let oldest = ended::oldest_writer_start(&other).await.unwrap();
    assert!(oldest <= began, "{oldest} while one begun at {began} runs");
    assert!(ended::settled_before(&other).await.unwrap() <= began);
    tx.rollback().await.unwrap();
    let oldest = ended::oldest_writer_start(&other).await.unwrap();
    assert!(oldest > began, "{oldest} once it ended");
}

#[tokio::test]
async fn a_filter_no_index_serves_looks_at_a_bounded_walk_and_can_look_further() {
    let app = spawn_app_with(0, |_| {}).await;
    let org = app.org_with_vehicles().await;
    Ended {
        object_type: "garage",
        n: 1,
        ago: "2 days",
        ..Ended::default()
    }
    .insert(&app, &org)
    .await;
    Ended {
        object_type: "vehicle",
        n: 25,
        ago: "1 day",
        ..Ended::default()
    }
    .insert(&app, &org)
    .await;
    let client = app.pool.get().await.unwrap();
    let garages = operations::Filter {
        org: Some(OrgId(org.id)),
        object_type: Some("garage".into()),
        ..Default::default()
    };

    // Ten at a time: three walks find nothing and say where they stopped.
    let mut filter = garages.clone();
    let mut walks = 0;
    let found = loop {
        walks += 1;
        let found = operations::search(&client, &filter, 50, 10).await.unwrap();
        match found.looked_down_to {
            Some(id) if found.rows.is_empty() => filter.before_id = Some(id),
            _ => break found,
        }
    };
    assert_eq!(walks, 3);
    assert_eq!(found.rows.len(), 1);
    assert_eq!(found.rows[0].process.object_type, "garage");
    assert_eq!(found.looked_down_to, None, "the walk reached the end");

    // A page that fills within the walk does not stop early.
    let vehicles = operations::Filter {
        object_type: Some("vehicle".into()),
        ..Default::default()
    };
    let found = operations::search(&client, &vehicles, 5, 10).await.unwrap();
    assert_eq!((found.rows.len(), found.looked_down_to), (5, None));
    // Times are checked the same way.
    let old = operations::Filter {
        created_before: Some(chrono::Utc::now() - chrono::Duration::hours(36)),
        ..garages.clone()
    };
    let found = operations::search(&client, &old, 50, 100).await.unwrap();
    assert_eq!(found.rows.len(), 1);

    // The console's walk is 100,000: past it, the page says so and links on.
    Ended {
        object_type: "vehicle",
        n: 100_000,
        ago: "1 hour",
        ..Ended::default()
    }
    .insert(&app, &org)
    .await;
    let cookie = app.console_cookie().await;
    let path = format!("/console/processes?org={}&object_type=garage", org.id);
    let first = app.console_page(&cookie, &path).await;
    assert!(first.contains("id=\"looked-through\""), "{first}");
    let further = first
        .split("id=\"look-further\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    let next = app.console_page(&cookie, &further).await;
    assert!(next.contains(">garage<"), "{next}");
    assert!(!next.contains("look-further"));
}
