//! One-time sign-in links for the dashboard: `POST /v1/sign-in-codes`
//! with a bearer token answers a code that `GET /ui/login?code=…`
//! exchanges once, within [`CODE_TTL`], for the signed-in cookie of that
//! token — so a token need not be typed into a browser, and never goes in
//! a URL itself. At most [`MAX_CODES`] wait to be used; past that a new
//! one is refused (503) until some expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Serialize;

use super::{ApiError, ApiState, Caller};

/// How long a code may be used.
pub const CODE_TTL: Duration = Duration::from_secs(60);
/// Codes waiting at most.
pub const MAX_CODES: usize = 1024;

/// 32 random hex digits.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    // The system's randomness failing is not something to go on without.
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("system randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The codes not yet used: code → (token, expiry).
#[derive(Default)]
pub struct SignInCodes {
    codes: Mutex<HashMap<String, (String, Instant)>>,
}

impl SignInCodes {
    /// A new code for `token`; `None` when [`MAX_CODES`] are waiting.
    pub fn mint(&self, token: &str, now: Instant) -> Option<String> {
        let mut codes = self.codes.lock().unwrap_or_else(|p| p.into_inner());
        codes.retain(|_, (_, expiry)| *expiry > now);
        if codes.len() >= MAX_CODES {
            return None;
        }
        let code = random_hex();
        codes.insert(code.clone(), (token.to_owned(), now + CODE_TTL));
        Some(code)
    }

    /// The token of `code`, once: the code is gone afterwards.
    pub fn redeem(&self, code: &str, now: Instant) -> Option<String> {
        let mut codes = self.codes.lock().unwrap_or_else(|p| p.into_inner());
        let (token, expiry) = codes.remove(code)?;
        (expiry > now).then_some(token)
    }
}

#[derive(Debug, Serialize)]
pub struct SignInCode {
    pub code: String,
    /// The link's path on this server.
    pub path: String,
    pub expires_in_s: u64,
}

pub async fn create(
    State(s): State<ApiState>,
    _caller: Caller,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<SignInCode>), ApiError> {
    // The caller authenticated with this very header.
    let token = super::auth::bearer(&headers)
        .ok_or_else(|| ApiError::unauthorized("a sign-in code needs a bearer token"))?;
    let code = s.sign_in_codes.mint(token, Instant::now()).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many sign-in codes waiting",
        )
    })?;
    Ok((
        StatusCode::CREATED,
        Json(SignInCode {
            path: format!("/ui/login?code={code}"),
            code,
            expires_in_s: CODE_TTL.as_secs(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_signs_in_once_within_its_time() {
        let codes = SignInCodes::default();
        let t0 = Instant::now();
        let code = codes.mint("vcp_a", t0).unwrap();
        assert_eq!(code.len(), 32);
        assert_eq!(codes.redeem(&code, t0), Some("vcp_a".into()));
        assert_eq!(codes.redeem(&code, t0), None, "used");
        let late = codes.mint("vcp_a", t0).unwrap();
        assert_eq!(codes.redeem(&late, t0 + CODE_TTL), None, "expired");
        assert_eq!(codes.redeem("nope", t0), None);
        for _ in 0..MAX_CODES {
            codes.mint("vcp_b", t0).unwrap();
        }
        assert_eq!(codes.mint("vcp_b", t0), None, "full");
        assert!(
            codes.mint("vcp_b", t0 + CODE_TTL).is_some(),
            "expired ones go"
        );
    }
}
