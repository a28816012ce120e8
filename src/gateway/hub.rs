//! Shared fan-out: who on this shard subscribed to what, the updates held
//! for the next push, and handing them out. An update is encoded once
//! ([`Update`]) and shared by every send. Updates are conflated per (mint,
//! window) to at most one per push interval, always the latest state;
//! closing bars always go out, in order, before the newer open state.
//!
//! Each push hands every member all the updates due to it at once, so they
//! go out in one write. With a push interval, a push is one tick of the
//! interval; without, one pass of the shard's poller over the feed (every
//! update it read, none conflated). The hub knows its members only as
//! [`Member`]s (a session implements it); it never reaches up to sessions
//! or the shard, and never touches a socket.

use std::cell::{RefCell, RefMut};
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::timer::sleep;
use rustc_hash::{FxHashMap, FxHashSet};

use super::update::{Series, Update};
use crate::codec::bar::ArchivedBar;
use crate::codec::trade::Pubkey;
use crate::runtime::Shutdown;

/// Something that takes bar updates: a session, as the hub sees it.
pub trait Member {
    /// Queues `due.updates_for(subscriptions)` for the client, in order.
    /// Called once per push with everything due to this member.
    fn deliver(&self, due: &Due);
}

/// A subscription: a window, of one mint or of all mints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subscription {
    /// Window, seconds.
    pub window_s: u32,
    /// Only this mint, or every mint when `None`.
    pub mint: Option<Pubkey>,
}

/// The updates of one push, indexed by who wants them.
#[derive(Debug, Default)]
pub struct Due {
    /// In send order.
    updates: Vec<Rc<Update>>,
    /// Window → indices into `updates` of its every mint.
    by_window: FxHashMap<u32, Vec<usize>>,
    /// Series → indices into `updates`.
    by_series: FxHashMap<Series, Vec<usize>>,
    /// A buffer members may use while they take their share (one write's
    /// bytes); one for the whole push instead of one per member.
    scratch: RefCell<Vec<u8>>,
}

impl Due {
    fn of(updates: Vec<Rc<Update>>) -> Self {
        let mut due = Self { updates, ..Self::default() };
        for (i, update) in due.updates.iter().enumerate() {
            due.by_window.entry(update.series.1).or_default().push(i);
            due.by_series.entry(update.series).or_default().push(i);
        }
        due
    }

    fn of_subscription(&self, sub: &Subscription) -> &[usize] {
        let found = match sub.mint {
            None => self.by_window.get(&sub.window_s),
            Some(mint) => self.by_series.get(&(mint, sub.window_s)),
        };
        found.map_or(&[], Vec::as_slice)
    }

    /// The updates for a member holding `subscriptions`, in send order,
    /// each once (a member may hold a window's every mint and one of its
    /// mints at the same time). Most members hold one subscription: theirs
    /// is read in place, without a list of its own.
    pub fn updates_for<'a>(&'a self, subscriptions: &[Subscription]) -> impl Iterator<Item = &'a Rc<Update>> + 'a {
        let (one, several): (&[usize], Vec<usize>) = match subscriptions {
            [sub] => (self.of_subscription(sub), Vec::new()),
            _ => {
                let mut picked: Vec<usize> =
                    subscriptions.iter().flat_map(|sub| self.of_subscription(sub)).copied().collect();
                picked.sort_unstable();
                picked.dedup();
                (&[], picked)
            }
        };
        one.iter().copied().chain(several).map(|i| &self.updates[i])
    }

    /// The shared buffer, emptied (see [`Due::scratch`]'s field).
    pub fn scratch(&self) -> RefMut<'_, Vec<u8>> {
        let mut scratch = self.scratch.borrow_mut();
        scratch.clear();
        scratch
    }
}

/// Updates of one series since the last push.
#[derive(Debug, Default)]
struct Held {
    closes: Vec<Rc<Update>>,
    latest: Option<Rc<Update>>,
}

/// A member's place in the index; `Rc` pointer identity tells members apart.
type MemberRef = Rc<dyn Member>;

/// Who subscribed to what on this shard, and what waits for the next push.
#[derive(Default)]
pub struct Hub {
    /// Window → members subscribed to every mint.
    all_mints: RefCell<FxHashMap<u32, Vec<MemberRef>>>,
    /// (mint, window) → members subscribed to that mint only.
    one_mint: RefCell<FxHashMap<Series, Vec<MemberRef>>>,
    /// Series with updates since the last push, in first-update order.
    held: RefCell<Vec<(Series, Held)>>,
    /// Series → index in `held`.
    held_index: RefCell<FxHashMap<Series, usize>>,
    /// Without a push interval: every update since the poller's last pass,
    /// in order (at most one pass's worth of messages).
    immediate: RefCell<Vec<Rc<Update>>>,
}

impl Hub {
    /// Adds a subscription of `member` (again: no change).
    pub fn subscribe(&self, member: &MemberRef, sub: Subscription) {
        let add = |list: &mut Vec<MemberRef>| {
            if !list.iter().any(|m| Rc::ptr_eq(m, member)) {
                list.push(member.clone());
            }
        };
        match sub.mint {
            None => add(self.all_mints.borrow_mut().entry(sub.window_s).or_default()),
            Some(mint) => add(self.one_mint.borrow_mut().entry((mint, sub.window_s)).or_default()),
        }
    }

    /// Removes the member's subscriptions on `window_s` (all windows if
    /// `None`).
    pub fn unsubscribe(&self, member: &MemberRef, window_s: Option<u32>) {
        let drops = |w: u32| window_s.is_none_or(|x| x == w);
        let others = |list: &mut Vec<MemberRef>| list.retain(|m| !Rc::ptr_eq(m, member));
        self.all_mints.borrow_mut().retain(|w, list| {
            if drops(*w) {
                others(list);
            }
            !list.is_empty()
        });
        self.one_mint.borrow_mut().retain(|(_, w), list| {
            if drops(*w) {
                others(list);
            }
            !list.is_empty()
        });
    }

    /// Whether anybody wants updates of `series`.
    pub fn wanted(&self, series: &Series) -> bool {
        self.all_mints.borrow().contains_key(&series.1) || self.one_mint.borrow().contains_key(series)
    }

    /// A live bar from the shard feed: copied into an [`Update`] if anybody
    /// wants it, then kept for the poller's next push ([`Hub::push_now`],
    /// `now`: no push interval) or held, conflated, for the next tick.
    pub fn offer(&self, payload: &[u8], bar: &ArchivedBar, now: bool) {
        if !self.wanted(&(bar.mint, bar.window_s.to_native())) {
            return;
        }
        let update = Update::new(payload, bar);
        if now {
            self.immediate.borrow_mut().push(update);
        } else {
            self.hold(update);
        }
    }

    /// Without a push interval: hands out every update offered since the
    /// last call (the poller calls it after each pass over the feed).
    pub async fn push_now(&self) {
        let updates = std::mem::take(&mut *self.immediate.borrow_mut());
        if !updates.is_empty() {
            self.hand_out(Due::of(updates)).await;
        }
    }

    /// Gives every member its share of `due`, [`PUSH_BATCH_MEMBERS`] at a
    /// time.
    async fn hand_out(&self, due: Due) {
        for batch in self.members_for(&due).chunks(PUSH_BATCH_MEMBERS) {
            for member in batch {
                member.deliver(&due);
            }
            // Let others run before the next batch: accepts, reads, and the
            // writers of members whose socket was full, so an outbox holds
            // its share only briefly and a push to 50,000 members holds a
            // batch's worth of queues at a time, not 50,000.
            futures_lite::future::yield_now().await;
        }
    }

    /// Holds an update for the next push (closing ones are all kept, in
    /// order; an open one replaces the previous open one).
    fn hold(&self, update: Rc<Update>) {
        let mut index = self.held_index.borrow_mut();
        let mut held = self.held.borrow_mut();
        let at = *index.entry(update.series).or_insert_with(|| {
            held.push((update.series, Held::default()));
            held.len() - 1
        });
        let slot = &mut held[at].1;
        if update.closed {
            slot.closes.push(update);
            slot.latest = None;
        } else {
            slot.latest = Some(update);
        }
    }

    /// Takes everything held since the last push, in send order.
    fn take_held(&self) -> Due {
        self.held_index.borrow_mut().clear();
        let held = std::mem::take(&mut *self.held.borrow_mut());
        let mut updates = Vec::new();
        for (_, h) in held {
            updates.extend(h.closes);
            updates.extend(h.latest);
        }
        Due::of(updates)
    }

    /// Every member that holds a subscription with something due, once.
    fn members_for(&self, due: &Due) -> Vec<MemberRef> {
        let (all, one) = (self.all_mints.borrow(), self.one_mint.borrow());
        let lists =
            due.by_window.keys().filter_map(|w| all.get(w)).chain(due.by_series.keys().filter_map(|s| one.get(s)));
        let mut seen: FxHashSet<*const ()> = FxHashSet::default();
        let mut members = Vec::new();
        for list in lists {
            for member in list {
                if seen.insert(Rc::as_ptr(member).cast::<()>()) {
                    members.push(member.clone());
                }
            }
        }
        members
    }
}

/// Members handed their updates before a push lets other tasks run.
/// Bounds the outbox memory a push holds at once (see [`Hub::hand_out`]);
/// small enough for that, large enough that yielding costs little.
const PUSH_BATCH_MEMBERS: usize = 256;

/// Shared mode with a push interval: once per interval, hands out what was
/// held, every member's share at once.
pub async fn push_loop(hub: Rc<Hub>, interval: Duration, shutdown: Shutdown) {
    let mut started = Instant::now();
    while !shutdown.requested() {
        // Counted from the start of the previous push, not on a fixed grid:
        // a late push never makes the next one early, so no series gets two
        // updates within one interval. Not from its end either: a push
        // includes the sending (batch by batch), and counting from its end
        // would stretch the period with the number of members.
        sleep(interval.saturating_sub(started.elapsed())).await;
        started = Instant::now();
        let due = hub.take_held();
        if !due.updates.is_empty() {
            hub.hand_out(due).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::gateway::update::tests::update;

    /// A member that records what it was given.
    struct Recorder {
        subs: Vec<Subscription>,
        got: RefCell<Vec<(u8, u64)>>,
    }

    impl Member for Recorder {
        fn deliver(&self, due: &Due) {
            self.got.borrow_mut().extend(due.updates_for(&self.subs).map(|u| (u.series.0[0], u.seq)));
        }
    }

    fn member(subs: &[Subscription]) -> (Rc<Recorder>, MemberRef) {
        let recorder = Rc::new(Recorder { subs: subs.to_vec(), got: RefCell::new(Vec::new()) });
        let as_member: MemberRef = recorder.clone();
        (recorder, as_member)
    }

    const ALL_1S: Subscription = Subscription { window_s: 1, mint: None };

    #[test]
    fn holds_latest_open_and_every_close_in_order() {
        let hub = Hub::default();
        for u in
            [update(1, 1, false), update(2, 1, false), update(1, 2, false), update(1, 3, true), update(1, 4, false)]
        {
            hub.hold(u);
        }
        let due = hub.take_held();
        let seqs: Vec<(u8, u64)> = due.updates_for(&[ALL_1S]).map(|u| (u.series.0[0], u.seq)).collect();
        assert_eq!(seqs, [(1, 3), (1, 4), (2, 1)]);
        assert!(hub.take_held().updates.is_empty());
    }

    #[test]
    fn each_member_gets_its_share_once_in_send_order() {
        let hub = Hub::default();
        let one_of_7 = Subscription { window_s: 1, mint: Some([7; 32]) };
        let (a, a_ref) = member(&[ALL_1S]);
        let (b, b_ref) = member(&[ALL_1S, one_of_7]);
        let (c, c_ref) = member(&[one_of_7]);
        for (m, subs) in [(&a_ref, &a.subs), (&b_ref, &b.subs), (&c_ref, &c.subs)] {
            for sub in subs.iter() {
                hub.subscribe(m, *sub);
            }
        }
        for u in [update(7, 1, false), update(8, 1, true), update(7, 2, true)] {
            hub.hold(u);
        }
        let due = hub.take_held();
        let members = hub.members_for(&due);
        assert_eq!(members.len(), 3, "each member once");
        for m in &members {
            m.deliver(&due);
        }
        assert_eq!(*a.got.borrow(), [(7, 2), (8, 1)]);
        assert_eq!(*b.got.borrow(), [(7, 2), (8, 1)], "no update twice");
        assert_eq!(*c.got.borrow(), [(7, 2)]);
    }

    #[test]
    fn unsubscribing_by_window_or_all() {
        let hub = Hub::default();
        let (_, a) = member(&[]);
        hub.subscribe(&a, ALL_1S);
        hub.subscribe(&a, Subscription { window_s: 60, mint: Some([7; 32]) });
        assert!(hub.wanted(&([9; 32], 1)) && hub.wanted(&([7; 32], 60)));
        hub.unsubscribe(&a, Some(1));
        assert!(!hub.wanted(&([9; 32], 1)) && hub.wanted(&([7; 32], 60)));
        hub.unsubscribe(&a, None);
        assert!(!hub.wanted(&([7; 32], 60)));
    }
}
