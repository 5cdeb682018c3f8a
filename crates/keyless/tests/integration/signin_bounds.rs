//! The sign-in log stays bounded against a flood (issue 12): identical failures are
//! one row with a count, and the row cap is enforced by housekeeping.

use anyhow::Result;
use reqwest::Method;
use serde_json::Value;

use crate::testkit::{KEYLESS_API, Server, poll};

/// Every row of the log, newest first.
async fn rows(server: &Server) -> Result<Vec<Value>> {
    let r = server
        .arm(
            Method::GET,
            &format!("/providers/Keyless/signInLogs?api-version={KEYLESS_API}&top=1000"),
            None,
        )
        .await?;
    assert_eq!(r.code(), 200, "{}", r.body);
    Ok(r.body["value"].as_array().cloned().unwrap_or_default())
}

#[tokio::test]
async fn a_flood_of_garbage_is_a_few_rows_and_the_row_cap_holds() -> Result<()> {
    let server = Server::start(&[
        "--signin-log-max-rows",
        "10",
        "--housekeeping-interval",
        "1",
    ])
    .await?;
    let ex = server.exchanger();
    let flood = "f100f100-0000-4000-8000-000000000001";
    for _ in 0..200 {
        let r = ex.exchange(flood, "x.y.z").await?;
        assert!(r.code() >= 400, "{}", r.body);
    }

    // As an operator sees it: `signin-log list -o json`, one row per window, the
    // counts adding up to every request.
    let seen = poll(15, || async {
        let out = server
            .cli(&["signin-log", "list", "--failed", "-o", "json"])
            .await?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed: Vec<Value> = serde_json::from_slice(&out.stdout)?;
        let mine: Vec<Value> = listed
            .into_iter()
            .filter(|r| r["clientId"] == flood)
            .collect();
        let total: i64 = mine.iter().filter_map(|r| r["count"].as_i64()).sum();
        Ok((total == 200).then_some(mine))
    })
    .await?;
    let mine = seen.expect("the 200 requests are counted in the log within 15 s");
    assert!(
        (1..=3).contains(&mine.len()),
        "identical failures share rows: {mine:?}"
    );

    // Distinct failures are not folded; housekeeping keeps only the newest 10 rows.
    for i in 0..20 {
        let client = format!("cab00000-0000-4000-8000-0000000000{i:02}");
        let r = ex.exchange(&client, "x.y.z").await?;
        assert!(r.code() >= 400, "{}", r.body);
    }
    let newest = "cab00000-0000-4000-8000-000000000019";
    let capped = poll(15, || async {
        let all = rows(&server).await?;
        let has_newest = all.iter().any(|r| r["clientId"] == newest);
        Ok((has_newest && all.len() <= 10).then_some(all))
    })
    .await?;
    let all = capped.expect("the row cap holds within 15 s of being exceeded");
    assert!(
        !all.iter()
            .any(|r| r["clientId"] == "cab00000-0000-4000-8000-000000000000"),
        "the oldest rows go first: {all:?}"
    );
    assert!(
        all.iter()
            .all(|r| r["count"].as_i64().is_some_and(|c| c >= 1)),
        "{all:?}"
    );
    Ok(())
}
