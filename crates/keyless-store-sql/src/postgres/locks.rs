//! PostgreSQL: transaction-scoped advisory locks, for writes that have no parent row to
//! lock (trusted issuer registrations).

use super::Tx;
use crate::error::Result;

/// Class id of Keyless' transaction-scoped advisory locks (the two-key form, so it can
/// never collide with sqlx's single-key migration lock).
const ADVISORY_CLASS: i32 = 0x4b4c; // "KL"

/// A stable 32-bit hash (FNV-1a) for advisory lock keys: every replica computes the same.
fn lock_key(parts: &[&str]) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for part in parts {
        for b in part.bytes().chain(std::iter::once(0)) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    i32::from_ne_bytes(h.to_ne_bytes())
}

pub(super) async fn advisory_lock(tx: &mut Tx, parts: &[&str]) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, $2)")
        .bind(ADVISORY_CLASS)
        .bind(lock_key(parts))
        .execute(&mut **tx)
        .await?;
    Ok(())
}
