//! The access token a credential hands out.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An access token and when it expires.
///
/// `Debug` never shows the token itself: tokens are bearer credentials and `Debug`
/// output tends to end up in logs. Use [`secret`](AccessToken::secret) to read it.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use keyless_credential::AccessToken;
///
/// let expires = SystemTime::now() + Duration::from_secs(3600);
/// let token = AccessToken::new("eyJ0eXAiOi...", expires);
/// assert_eq!(token.authorization_header(), "Bearer eyJ0eXAiOi...");
/// assert!(!format!("{token:?}").contains("eyJ0"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    secret: String,
    token_type: String,
    expires_on: SystemTime,
    refresh_on: SystemTime,
}

impl AccessToken {
    /// A bearer token that expires at `expires_on` (and is not refreshed before). For
    /// test doubles of [`TokenCredential`](crate::TokenCredential); credentials build
    /// their tokens from the token service's response.
    pub fn new(secret: impl Into<String>, expires_on: SystemTime) -> Self {
        Self {
            secret: secret.into(),
            token_type: "Bearer".to_owned(),
            expires_on,
            refresh_on: expires_on,
        }
    }

    pub(crate) fn with_details(
        secret: String,
        token_type: String,
        expires_on: SystemTime,
        refresh_on: SystemTime,
    ) -> Self {
        Self {
            secret,
            token_type,
            expires_on,
            refresh_on,
        }
    }

    /// The token itself, to send as `Authorization: Bearer <token>`.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The token type the service named (`Bearer`).
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// When the token expires, by the credential's clock (request time + `expires_in`).
    pub fn expires_on(&self) -> SystemTime {
        self.expires_on
    }

    /// When the credential will start fetching a replacement: `refresh_in` when the
    /// service sent one, else as its [`RefreshPolicy`](crate::RefreshPolicy) says.
    pub fn refresh_on(&self) -> SystemTime {
        self.refresh_on
    }

    /// [`expires_on`](AccessToken::expires_on) as Unix seconds (what az prints as
    /// `expires_on`). Times before 1970 read as 0.
    pub fn expires_on_unix(&self) -> i64 {
        let secs = self
            .expires_on
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        i64::try_from(secs).unwrap_or(i64::MAX)
    }

    /// The value of an `Authorization` header carrying this token: `Bearer <token>`.
    pub fn authorization_header(&self) -> String {
        format!("Bearer {}", self.secret)
    }

    /// Whether the token is past its expiry at `now`.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        now >= self.expires_on
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_on", &self.expires_on)
            .field("refresh_on", &self.refresh_on)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_expiry_saturates_instead_of_panicking() {
        let t = AccessToken::new("x", UNIX_EPOCH - Duration::from_secs(10));
        assert_eq!(t.expires_on_unix(), 0);
        assert!(t.is_expired_at(UNIX_EPOCH));
        let t = AccessToken::new("x", UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert_eq!(t.expires_on_unix(), 1_700_000_000);
    }
}
