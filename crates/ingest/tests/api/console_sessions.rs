//! Console filters PostgreSQL cannot hold are a 400, not a 500.

use objectsync_testkit::{no_redirects, spawn_app_with};

/// The status of `GET {base}{path}` with `cookie`, and where it redirects.
async fn view(base: &str, path: &str, cookie: &str) -> (u16, String) {
    let resp = no_redirects()
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let status = resp.status().as_u16();
    if status == 200 {
        return (status, resp.text().await.unwrap());
    }
    (status, location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_filters_postgres_cannot_hold_are_a_400() {
    let app = spawn_app_with(0, |_| {}).await;
    let cookie = app.console_cookie().await;
    for query in [
        "object_type=%00",
        "object_type=a%00b&org=1",
        "object_type=%00&status=queued",
        "object_type=%00&org=1&status=failed",
        "object_type=%FF",
        "object_type=Vehicle",
    ] {
        let (status, page) = view(
            &app.address,
            &format!("/console/processes?{query}"),
            &cookie,
        )
        .await;
        assert_eq!(status, 400, "{query}: {page}");
    }
    let resp = no_redirects()
        .get(app.url("/console/processes?object_type=%00"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert!(resp.text().await.unwrap().contains("is not a type name"));
    for query in [
        "object_type=vehicle",
        "object_type=vehicle&org=1&status=queued",
    ] {
        let (status, _) = view(
            &app.address,
            &format!("/console/processes?{query}"),
            &cookie,
        )
        .await;
        assert_eq!(status, 200, "{query}");
    }
}
