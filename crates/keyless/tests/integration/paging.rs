//! Management lists and the sign-in log page as ARM does: `$top`, `$skipToken`, an
//! absolute `nextLink` that a client follows to the end.

use anyhow::{Result, ensure};
use reqwest::Method;
use serde_json::Value;

use crate::testkit::{KEYLESS_API, MI_API, Server};

/// Follows `nextLink` from `first` (a path with its query); returns the pages' sizes
/// and every item.
async fn follow(server: &Server, first: &str) -> Result<(Vec<usize>, Vec<Value>)> {
    let mut sizes = Vec::new();
    let mut items = Vec::new();
    let mut path = first.to_string();
    for _ in 0..50 {
        let r = server.arm(Method::GET, &path, None).await?;
        ensure!(r.code() == 200, "GET {path}: {} {}", r.code(), r.body);
        let page = r.body["value"].as_array().cloned().unwrap_or_default();
        sizes.push(page.len());
        items.extend(page);
        match r.body["nextLink"].as_str() {
            Some(next) => {
                // Absolute, on the server's public origin.
                let rest = next
                    .strip_prefix(&server.url)
                    .unwrap_or_else(|| panic!("nextLink {next} is not on {}", server.url));
                path = rest.to_string();
            }
            None => return Ok((sizes, items)),
        }
    }
    anyhow::bail!("more than 50 pages")
}

#[tokio::test]
async fn management_lists_page_with_top_and_next_links() -> Result<()> {
    let server = Server::start(&[]).await?;
    server.create_rg("rg-paging").await?;
    for i in 0..5 {
        server
            .create_identity("rg-paging", &format!("id-{i}"))
            .await?;
    }
    let list = format!(
        "{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities?api-version={MI_API}",
        server.rg_path("rg-paging")
    );
    let (sizes, items) = follow(&server, &format!("{list}&$top=2")).await?;
    assert_eq!(sizes, vec![2, 2, 1]);
    let names: Vec<&str> = items.iter().filter_map(|i| i["name"].as_str()).collect();
    assert_eq!(names, ["id-0", "id-1", "id-2", "id-3", "id-4"]);
    // Without $top: one page, no nextLink.
    let (sizes, _) = follow(&server, &list).await?;
    assert_eq!(sizes, vec![5]);
    // Resource groups page the same way.
    server.create_rg("rg-paging-2").await?;
    let (sizes, _) = follow(
        &server,
        &format!(
            "{}/resourcegroups?api-version=2021-04-01&$top=1",
            server.sub_path()
        ),
    )
    .await?;
    assert!(
        sizes.len() >= 2 && sizes.iter().all(|n| *n == 1),
        "{sizes:?}"
    );
    // Bad paging parameters are refused in ARM's shape.
    for bad in ["$top=0", "$top=5000", "$skipToken=nope"] {
        let r = server
            .arm(Method::GET, &format!("{list}&{bad}"), None)
            .await?;
        r.arm_error(400, "InvalidParameter");
    }
    // The CLI follows nextLink: it lists all of them.
    let out = server
        .cli(&["identity", "list", "-g", "rg-paging", "-o", "json"])
        .await?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout)?;
    assert_eq!(listed.len(), 5);
    Ok(())
}

#[tokio::test]
async fn the_sign_in_log_pages_by_row_and_stays_consistent_while_rows_arrive() -> Result<()> {
    let server = Server::start(&[]).await?;
    let ex = server.exchanger();
    for i in 0..7 {
        let client = format!("cab00000-0000-4000-8000-00000000000{i}");
        let r = ex.exchange(&client, "x.y.z").await?;
        assert!(r.code() >= 400);
    }
    let log = format!("/providers/Keyless/signInLogs?api-version={KEYLESS_API}&failed=true");
    // Wait for the writer.
    let mut all = Vec::new();
    for _ in 0..50 {
        let (_, items) = follow(&server, &format!("{log}&$top=1000")).await?;
        if items.len() >= 7 {
            all = items;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(all.len(), 7);
    let first = server
        .arm(Method::GET, &format!("{log}&$top=3"), None)
        .await?;
    // New rows arriving between pages do not shift the later pages.
    let r = ex
        .exchange("cab00000-0000-4000-8000-0000000000ff", "x.y.z")
        .await?;
    assert!(r.code() >= 400);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let mut items: Vec<Value> = first.body["value"].as_array().cloned().unwrap_or_default();
    let next = first.body["nextLink"]
        .as_str()
        .expect("a nextLink")
        .to_string();
    let (sizes, rest) = follow(&server, next.strip_prefix(&server.url).unwrap()).await?;
    items.extend(rest);
    assert_eq!(sizes, vec![3, 1]);
    let ids = |v: &[Value]| v.iter().map(|r| r["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&items), ids(&all), "the same seven rows, newest first");
    Ok(())
}
