//! One token's share of the API: past its rate, 429 with `Retry-After`,
//! while other tokens are served.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_past_its_rate_gets_429_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let (fleet, tokens) = start_with(dir.path(), None, |opts| {
        opts.control.limits.api.per_token_rate = 0.5;
        opts.control.limits.api.per_token_burst = 3.0;
    })
    .await;
    let addr = fleet.supervisor().api.as_ref().unwrap().addr;
    for _ in 0..3 {
        assert_eq!(get(addr, "/v1/hosts", &tokens.acme).await.0, 200);
    }
    let (status, body) = get(addr, "/v1/hosts", &tokens.acme).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body.to_string().contains("too many requests of this token"),
        "{body}"
    );
    let auth = format!("Bearer {}", tokens.acme);
    let r = tokio::task::spawn_blocking(move || {
        common::http::request(addr, "GET", "/v1/hosts", &[("Authorization", &auth)], None)
    })
    .await
    .unwrap();
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(get(addr, "/v1/hosts", &tokens.globex).await.0, 200);
    // An unknown token is refused as before: it never gets a share.
    assert_eq!(get(addr, "/v1/hosts", "vcp_unknown").await.0, 401);
}
