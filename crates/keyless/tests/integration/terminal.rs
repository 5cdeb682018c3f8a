//! Issue 11 §4: control characters a workload put in its token (`sub`, `iss`) are
//! stored as received but never reach an operator's terminal raw: `keyless signin-log
//! list -o tsv|table` escapes them, so an ESC cannot colour the screen and a newline or
//! a tab cannot forge a row or a column.

use anyhow::Result;

use crate::testkit::{Server, TestIssuer, credential, poll};

#[tokio::test]
async fn a_hostile_subject_cannot_forge_sign_in_rows_or_colour_the_terminal() -> Result<()> {
    let server = Server::start(&[]).await?;
    let issuer = TestIssuer::new("https://issuer.terminal.test/c1")?;
    server
        .register_issuer("terminal", &issuer.issuer, issuer.jwks())
        .await?;
    let identity = server
        .identity_with_credential(
            "rg-term",
            "term",
            credential(&issuer.issuer, "system:serviceaccount:ns:app"),
        )
        .await?;
    // A subject no credential trusts, made to look like two more log rows in red.
    let hostile = "x\u{1b}[31m\nFORGED-ROW\tsuccess\r\u{9b}2J\u{202e}";
    let r = server
        .exchange(&identity.client_id, &issuer.sign(&issuer.claims(hostile)))
        .await?;
    assert_eq!(r.code(), 401, "{}", r.body);

    for format in ["tsv", "table"] {
        let out = poll(10, || async {
            let out = server
                .cli(&["signin-log", "list", "--failed", "-o", format])
                .await?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            Ok(text.contains("FORGED-ROW").then_some((out, text)))
        })
        .await?;
        let (out, text) = out.expect("the failed sign-in is listed within 10 s");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for raw in ['\u{1b}', '\r', '\u{9b}', '\u{202e}'] {
            assert!(!text.contains(raw), "{format}: raw {raw:?} in {text:?}");
        }
        assert!(
            !text.lines().any(|l| l.starts_with("FORGED-ROW")),
            "{format}: a forged row: {text:?}"
        );
        let row = text
            .lines()
            .find(|l| l.contains("FORGED-ROW"))
            .unwrap_or_default();
        assert!(
            row.contains("\\u{1b}[31m\\nFORGED-ROW\\tsuccess"),
            "{format}: {row:?}"
        );
    }
    Ok(())
}
