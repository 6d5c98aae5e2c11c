//! Hostile peers with valid credentials, over real QUIC on 127.0.0.1: each
//! test breaks one rule and checks that only its own connection pays —
//! closed with the reason, nothing billed, memory flat — while honest
//! agents go on.

#[path = "../common/mod.rs"]
mod common;

mod agents;
mod app;
mod config;
mod flood;
mod modules;

/// Not a test by itself: the body of a child supervisor process.
#[test]
#[ignore = "started by other tests as a child process"]
fn child_supervisor() {
    common::child::run_if_child();
}
