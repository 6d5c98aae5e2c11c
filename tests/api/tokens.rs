//! Tokens over the API and from the command line: created, listed without
//! their secret, revoked (refused within seconds, also when revoked by
//! another process), and the audit trail of it all.

use std::time::Instant;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_created_listed_and_revoked_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, t) = start(dir.path(), None).await;
    let addr = fleet.api_addr();
    let body = r#"{"account": "acme", "role": "customer", "ttl": "1h"}"#;
    let (status, issued) = call(addr, "POST", "/v1/tokens", Some(&t.operator), Some(body)).await;
    assert_eq!(status, 201, "{issued}");
    let secret = issued["token"].as_str().unwrap().to_owned();
    let id = issued["id"].as_str().unwrap().to_owned();
    let created = issued["created_ms"].as_i64().unwrap();
    assert_eq!(issued["expires_ms"].as_i64(), Some(created + 3_600_000));
    assert_eq!(get(addr, "/v1/hosts", &secret).await.0, 200);

    let (_, listed) = get(addr, "/v1/tokens", &t.operator).await;
    assert!(!listed.to_string().contains(&secret), "a secret is listed");
    let mine = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id.as_str());
    let mine = mine.expect("the new token is listed");
    assert_eq!(
        (&mine["account"], &mine["role"]),
        (&"acme".into(), &"customer".into())
    );
    assert!(mine["revoked_ms"].is_null());

    for (bad, why) in [
        (
            r#"{"account": "acme", "role": "customer", "ttl": "never"}"#,
            "only the operator",
        ),
        (
            r#"{"account": "acme", "role": "customer", "ttl": "soon"}"#,
            "30d",
        ),
        (
            r#"{"account": "operator", "role": "customer"}"#,
            "operator's",
        ),
    ] {
        let (status, e) = call(addr, "POST", "/v1/tokens", Some(&t.operator), Some(bad)).await;
        assert_eq!(status, 422, "{bad}: {e}");
        assert!(e["error"].as_str().unwrap().contains(why), "{bad}: {e}");
    }

    let path = format!("/v1/tokens/{id}");
    let (status, revoked) = call(addr, "DELETE", &path, Some(&t.operator), None).await;
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_ms"].as_i64().unwrap() >= created);
    let (status, e) = get(addr, "/v1/hosts", &secret).await;
    assert_eq!(status, 401);
    let e = e["error"].as_str().unwrap();
    assert!(e.contains(&format!("token {id} was revoked at 20")), "{e}");
    let (status, _) = call(
        addr,
        "DELETE",
        "/v1/tokens/000000000000",
        Some(&t.operator),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // The audit trail: who created, used and revoked it; a page at a time.
    let (_, lines) = get(addr, "/v1/audit?limit=1000", &t.operator).await;
    let lines = lines.as_array().unwrap();
    let of = |action: &str| {
        lines
            .iter()
            .find(|l| l["action"] == action && l["subject"] == id.as_str())
            .unwrap_or_else(|| panic!("no {action} of {id} in {lines:?}"))
    };
    assert_eq!(of("token.create")["actor"], "operator");
    assert_eq!(of("token.revoke")["actor"], "operator");
    let first = lines[0]["seq"].as_i64().unwrap();
    let (_, page) = get(
        addr,
        &format!("/v1/audit?after={first}&limit=1"),
        &t.operator,
    )
    .await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["seq"], lines[1]["seq"]);
    let (status, _) = get(addr, "/v1/audit?limit=lots", &t.operator).await;
    assert_eq!(status, 400);
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_by_the_cli_reaches_the_running_supervisor() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, _) = start(dir.path(), None).await;
    let addr = fleet.api_addr();
    let vcp = |args: &[&str]| common::vcp_on(dir.path(), &[&["token"], args].concat());
    // Made by another process: the supervisor reads it at its next refresh.
    let secret = vcp(&[
        "create",
        "--account",
        "globex",
        "--role",
        "customer",
        "--ttl",
        "30d",
    ]);
    let secret = secret.trim().to_owned();
    let started = Instant::now();
    while get(addr, "/v1/hosts", &secret).await.0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "new token never accepted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let listed = vcp(&["list"]);
    let header = listed.lines().next().unwrap();
    for column in ["id", "account", "role", "created", "expires", "last used"] {
        assert!(header.contains(column), "{header}");
    }
    assert!(!listed.contains(&secret), "{listed}");
    let id = &vcp_store::accounts::digest(&secret)[..12];
    let row = listed.lines().find(|l| l.starts_with(id)).expect("listed");
    assert!(row.contains("globex") && row.contains("valid"), "{row}");

    let said = vcp(&["revoke", id]);
    assert!(
        said.starts_with(&format!("revoked {id} (customer globex) at 20")),
        "{said}"
    );
    let revoked = Instant::now();
    loop {
        let (status, e) = get(addr, "/v1/hosts", &secret).await;
        if status == 401 {
            assert!(e.to_string().contains("was revoked at"), "{e}");
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(5),
            "revocation not seen"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "revocation reached the supervisor in {:?}",
        revoked.elapsed()
    );
    let row = vcp(&["list"]);
    let row = row.lines().find(|l| l.starts_with(id)).unwrap().to_owned();
    assert!(row.contains("revoked 20"), "{row}");
    fleet.stop().await;
}
