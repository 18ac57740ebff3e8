//! Login sessions and the cookie check.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// A device keeps at most this many sessions; the oldest go first.
const MAX_SESSIONS: usize = 256;

/// Live session tokens and when each expires.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    expiry: HashMap<String, Instant>,
}

impl Sessions {
    /// Opens a session and returns its token.
    pub(crate) fn open(&mut self, rng: &mut fastrand::Rng, now: Instant, ttl: Duration) -> String {
        self.expiry.retain(|_, until| *until > now);
        if self.expiry.len() >= MAX_SESSIONS {
            if let Some(oldest) = self
                .expiry
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(token, _)| token.clone())
            {
                self.expiry.remove(&oldest);
            }
        }
        let token = format!("{:032x}", rng.u128(..));
        self.expiry
            .insert(token.clone(), crate::state::later(now, ttl));
        token
    }

    /// True when one of the `session` cookies in these `Cookie` header values is live.
    pub(crate) fn admits<'a>(
        &self,
        cookie_headers: impl Iterator<Item = &'a str>,
        now: Instant,
    ) -> bool {
        cookie_headers
            .flat_map(|h| h.split(';'))
            .filter_map(|c| c.trim().strip_prefix("session="))
            .any(|token| {
                self.expiry
                    .get(token.trim_matches('"'))
                    .is_some_and(|until| *until > now)
            })
    }

    pub(crate) fn expire_all(&mut self) {
        self.expiry.clear();
    }

    pub(crate) fn len(&self) -> usize {
        self.expiry.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_among_others_admits_until_ttl() {
        let mut s = Sessions::default();
        let mut rng = fastrand::Rng::with_seed(7);
        let t0 = Instant::now();
        let token = s.open(&mut rng, t0, Duration::from_secs(10));
        let header = format!("lang=en; session={token}; other=1");
        assert!(s.admits([header.as_str()].into_iter(), t0));
        assert!(s.admits(
            ["a=b", header.as_str()].into_iter(),
            t0 + Duration::from_secs(9)
        ));
        assert!(!s.admits([header.as_str()].into_iter(), t0 + Duration::from_secs(10)));
        assert!(!s.admits(["session=nope"].into_iter(), t0));
        assert!(!s.admits(std::iter::empty(), t0));
        s.expire_all();
        assert!(!s.admits([header.as_str()].into_iter(), t0));
    }

    #[test]
    fn session_table_is_bounded() {
        let mut s = Sessions::default();
        let mut rng = fastrand::Rng::with_seed(1);
        let t0 = Instant::now();
        for _ in 0..(MAX_SESSIONS + 10) {
            s.open(&mut rng, t0, Duration::from_secs(10));
        }
        assert_eq!(s.len(), MAX_SESSIONS);
    }
}
