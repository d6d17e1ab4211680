//! The simulation's randomness and network: one seeded generator drives
//! every choice, and messages travel through one queue ordered by delivery
//! time, so a seed replays the same run exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// SplitMix64: small, fast, and the same on every platform.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `per_million` / 1,000,000.
    pub fn chance(&mut self, per_million: u64) -> bool {
        self.below(1_000_000) < per_million
    }
}

/// A node's address: brokers are 1..=N, the controller and the client have
/// their own.
pub type NodeId = i32;
pub const CONTROLLER: NodeId = 0;
pub const CLIENT: NodeId = -1;

/// Messages in flight, delivered in (time, send order); lost when a link is
/// cut, by chance, or when either end crashes (its connections die).
pub struct Net<M> {
    queue: BTreeMap<(Duration, u64), (NodeId, NodeId, M)>,
    sent: u64,
    /// Cut links, both directions (a, b) with a < b.
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Chance per million that a message is lost.
    pub loss_per_million: u64,
    /// Largest ordinary delay; a few messages take ten times longer.
    pub delay_max: Duration,
}

impl<M> Default for Net<M> {
    fn default() -> Self {
        Net::new()
    }
}

impl<M> Net<M> {
    pub fn new() -> Net<M> {
        Net {
            queue: BTreeMap::new(),
            sent: 0,
            cut: BTreeSet::new(),
            loss_per_million: 0,
            delay_max: Duration::from_millis(5),
        }
    }

    fn link(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
        (a.min(b), a.max(b))
    }

    pub fn send(&mut self, rng: &mut Rng, now: Duration, from: NodeId, to: NodeId, message: M) {
        if self.cut.contains(&Self::link(from, to)) || rng.chance(self.loss_per_million) {
            return;
        }
        let max = self.delay_max.as_micros() as u64;
        let mut delay = Duration::from_micros(100 + rng.below(max.max(1)));
        if rng.chance(20_000) {
            delay *= 10;
        }
        self.sent += 1;
        self.queue
            .insert((now + delay, self.sent), (from, to, message));
    }

    /// The next message due at or before `now`.
    pub fn next_due(&mut self, now: Duration) -> Option<(NodeId, NodeId, M)> {
        let (&key, _) = self.queue.iter().next()?;
        if key.0 > now {
            return None;
        }
        self.queue.remove(&key)
    }

    /// Drops every message to or from `node` (it crashed).
    pub fn drop_node(&mut self, node: NodeId) {
        self.queue
            .retain(|_, (from, to, _)| *from != node && *to != node);
    }

    pub fn cut_link(&mut self, a: NodeId, b: NodeId) {
        self.cut.insert(Self::link(a, b));
        self.queue
            .retain(|_, (from, to, _)| Self::link(*from, *to) != Self::link(a, b));
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn is_cut(&self, a: NodeId, b: NodeId) -> bool {
        self.cut.contains(&Self::link(a, b))
    }

    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_gives_one_sequence() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(7).next_u64(), Rng::new(8).next_u64());
    }

    #[test]
    fn messages_arrive_in_time_order_and_cut_links_lose_them() {
        let mut rng = Rng::new(1);
        let mut net: Net<u32> = Net::new();
        for i in 0..50 {
            net.send(&mut rng, Duration::ZERO, 1, 2, i);
        }
        net.cut_link(2, 3);
        net.send(&mut rng, Duration::ZERO, 3, 2, 99);
        let mut got = 0;
        while net.next_due(Duration::from_secs(1)).is_some() {
            got += 1;
        }
        assert_eq!(got, 50);
    }
}
