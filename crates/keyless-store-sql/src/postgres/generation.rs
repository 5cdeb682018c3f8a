//! Which write generations a change feed has been told about, so the periodic resync can
//! skip its full reload when nothing was missed.
//!
//! Every transaction that changes a counted table takes one number from the
//! `keyless_generation` sequence (migration 0006), and the store's notifications carry it.
//! A listener therefore knows the numbers it was told about; a number below the sequence's
//! value that it was never told about is a write it missed (a hand edit, an older
//! replica, a write that changed a row and then rolled back).
//!
//! Numbers are taken when a transaction first changes a row but told at commit, so a
//! slow transaction may still be on its way when a newer one is told. The check is
//! therefore one interval behind: a resync is needed when some number that was already
//! taken at the *previous* check is still unaccounted for. A transaction open for longer
//! than one resync interval costs one needless reload; a hand edit is caught within two
//! intervals (unless its transaction stays open across one, or across a reconnect of the
//! listener: its number is then counted as covered by that reload).
//!
//! This module is the bookkeeping alone (no I/O); [`super::feed`] feeds it and
//! [`super::PgStore`]'s `may_have_missed_changes` asks it.

use std::collections::BTreeSet;

/// Numbers told out of order that are kept while an earlier one is still missing; beyond
/// this many (a stuck hole and a busy database), the next check asks for a reload, which
/// forgives the hole.
pub const MAX_PENDING: usize = 65_536;

/// The bookkeeping of one change feed.
#[derive(Debug, Default)]
pub struct Generations {
    /// `None` while the feed is not listening (not started, reconnecting, or ended):
    /// changes may be missed then, and every check asks for a reload.
    listening: Option<Listening>,
}

#[derive(Debug)]
struct Listening {
    /// Every number up to here is accounted for: told, or covered by a reload.
    floor: u64,
    /// Numbers told above `floor + 1` (a hole below them).
    pending: BTreeSet<u64>,
    /// More than [`MAX_PENDING`] were pending: they were dropped.
    overflowed: bool,
    /// The sequence's value at the previous check (or when listening started).
    previous: u64,
}

impl Generations {
    /// The feed listens now, and the sequence stood at `now` *after* `LISTEN` took
    /// effect. Anything numbered up to `now` either committed before (and the reload the
    /// feed asks for on every (re)connection covers it) or will be told (it commits while
    /// we listen).
    pub fn listening(&mut self, now: u64) {
        self.listening = Some(Listening {
            floor: now,
            pending: BTreeSet::new(),
            overflowed: false,
            previous: now,
        });
    }

    /// The feed stopped listening (connection lost, or the feed ended).
    pub fn stopped(&mut self) {
        self.listening = None;
    }

    /// A notification carried number `n`.
    pub fn told(&mut self, n: u64) {
        let Some(l) = &mut self.listening else {
            return;
        };
        if n <= l.floor {
            return;
        }
        if l.pending.len() >= MAX_PENDING {
            l.overflowed = true;
            l.pending.clear();
        }
        l.pending.insert(n);
        l.advance();
    }

    /// Whether a full reload is needed, given that the sequence stands at `now`. `true`
    /// also records that the caller reloads now: what was unaccounted for at the
    /// previous check counts as covered from here on.
    pub fn check(&mut self, now: u64) -> bool {
        let Some(l) = &mut self.listening else {
            return true;
        };
        let needed = l.overflowed || l.floor < l.previous;
        if needed {
            l.overflowed = false;
            l.floor = l.floor.max(l.previous);
            let floor = l.floor;
            l.pending.retain(|&n| n > floor);
            l.advance();
        }
        l.previous = l.previous.max(now);
        needed
    }
}

impl Listening {
    /// Moves the floor over every pending number that directly follows it.
    fn advance(&mut self) {
        while let Some(&first) = self.pending.first() {
            if first != self.floor + 1 {
                break;
            }
            self.floor = first;
            self.pending.pop_first();
        }
    }
}

/// Splits a notification payload into its generation (the `g<n>|` prefix the store's
/// writes add) and the change text. A payload without the prefix (an older replica, or a
/// write that changed no counted row) has no generation.
pub fn split_payload(payload: &str) -> (Option<u64>, &str) {
    if let Some(rest) = payload.strip_prefix('g')
        && let Some((digits, change)) = rest.split_once('|')
        && !digits.is_empty()
        && digits.len() <= 20
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = digits.parse::<u64>()
    {
        return (Some(n), change);
    }
    (None, payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_listening_always_needs_a_reload() {
        let mut g = Generations::default();
        assert!(g.check(0));
        g.told(1);
        assert!(g.check(1));
        g.listening(1);
        g.stopped();
        assert!(g.check(1));
    }

    #[test]
    fn every_number_told_needs_no_reload() {
        let mut g = Generations::default();
        g.listening(10);
        assert!(!g.check(10));
        for n in 11..=20 {
            g.told(n);
        }
        assert!(!g.check(20));
        assert!(!g.check(20));
    }

    #[test]
    fn numbers_told_out_of_order_are_accounted_for() {
        let mut g = Generations::default();
        g.listening(0);
        // 1 and 2 are taken after this check; 2 commits (and is told) first.
        assert!(!g.check(0));
        g.told(2);
        // 1 is still on its way: not yet a reason to reload (it was not taken at the
        // previous check, which read 0).
        assert!(!g.check(2));
        g.told(1);
        assert!(!g.check(2));
        assert!(!g.check(2));
    }

    #[test]
    fn a_transaction_open_across_a_whole_interval_costs_one_reload() {
        let mut g = Generations::default();
        g.listening(0);
        // 1 is taken, 2 taken and told; 1 is still open at the next two checks.
        g.told(2);
        assert!(!g.check(2));
        assert!(g.check(2));
        // Told later: nothing more to do.
        g.told(1);
        assert!(!g.check(2));
    }

    #[test]
    fn a_number_never_told_needs_one_reload_one_check_later() {
        let mut g = Generations::default();
        g.listening(5);
        // A hand edit takes 6 and is never told; a Keyless write takes 7 and is.
        g.told(7);
        // 6 was not taken at the previous check (5): it may still be on its way.
        assert!(!g.check(7));
        // Now it was taken at the previous check and is still missing.
        assert!(g.check(7));
        // The reload covered it: no further reload.
        assert!(!g.check(7));
        g.told(8);
        assert!(!g.check(8));
    }

    #[test]
    fn a_hole_below_the_last_number_is_caught_too() {
        let mut g = Generations::default();
        g.listening(0);
        assert!(!g.check(3));
        g.told(1);
        g.told(3);
        assert!(g.check(3), "2 is missing");
        assert!(!g.check(3));
    }

    #[test]
    fn numbers_at_or_below_the_floor_are_ignored() {
        let mut g = Generations::default();
        g.listening(100);
        g.told(50);
        g.told(100);
        assert!(!g.check(100));
        assert!(!g.check(100));
    }

    #[test]
    fn too_many_pending_numbers_ask_for_a_reload() {
        let mut g = Generations::default();
        g.listening(0);
        let top = u64::try_from(MAX_PENDING).unwrap_or(u64::MAX) + 10;
        for n in 2..=top {
            g.told(n);
        }
        assert!(g.check(top), "overflowed");
        // The reload covered up to what the previous check read (0): 1 is forgiven only
        // once a check has seen it taken.
        assert!(g.check(top));
        assert!(!g.check(top));
    }

    #[test]
    fn payload_prefix() {
        assert_eq!(
            split_payload("g17|identity:s/g/n"),
            (Some(17), "identity:s/g/n")
        );
        assert_eq!(
            split_payload("g1|credentials:a|b"),
            (Some(1), "credentials:a|b")
        );
        assert_eq!(split_payload("identity:s/g/n"), (None, "identity:s/g/n"));
        assert_eq!(split_payload("secrets"), (None, "secrets"));
        assert_eq!(split_payload("g|secrets"), (None, "g|secrets"));
        assert_eq!(split_payload("gx|secrets"), (None, "gx|secrets"));
        assert_eq!(split_payload("g-1|secrets"), (None, "g-1|secrets"));
        assert_eq!(
            split_payload("g99999999999999999999999|secrets"),
            (None, "g99999999999999999999999|secrets")
        );
    }
}
