//! The simulation's producing client (acks=all, no idempotence): it sends
//! to the leader the newest controller image names, gives up after its
//! timeout, and tells the checks what was acknowledged. Its writes to the
//! offsets partition are offset commits (`groups`).

use super::*;

impl Sim {
    pub(super) fn client_duties(&mut self, faults: bool) {
        let rate = if faults { 150_000 } else { 50_000 };
        // A producer gives up on a request after its timeout (the
        // leader that held it may have crashed, or the answer was lost):
        // its record may still be in the log, but it is not acknowledged.
        let now = self.now;
        self.client
            .outstanding
            .retain(|_, (_, _, sent)| now.saturating_sub(*sent) < PRODUCE_TIMEOUT);
        if !self.rng.chance(rate) || self.client.outstanding.len() >= 64 {
            return;
        }
        let p = self.rng.below(self.partitions as u64) as i32;
        // The client's metadata: the controller's image, as of a moment ago.
        let leader = self.latest.topics[TOPIC].replicas[p as usize].leader;
        if leader < 1 {
            return;
        }
        let request = self.client.next_request;
        self.client.next_request += 1;
        // One record, as a producer without idempotence sends it; to the
        // offsets partition, an offset commit as the group coordinator
        // writes it.
        let batch = if p == groups::OFFSETS_PARTITION {
            groups::commit_batch(request, clock::now_ms())
        } else {
            let value = Bytes::from(format!("v{request}"));
            crate::group::records::batch(&[(value.clone(), Some(value))], clock::now_ms())
        };
        let crc = crate::protocol::batch::BatchHeader::parse(&batch)
            .map(|h| h.crc)
            .expect("a batch the simulation built");
        self.client.outstanding.insert(request, (p, crc, now));
        self.stats.produced += 1;
        self.send(
            CLIENT,
            leader,
            Message::Produce {
                request,
                partition: p,
                batch,
            },
        );
    }

    pub(super) fn client_receive(&mut self, message: Message) {
        let Message::ProduceReply { request, result } = message else {
            unreachable!("the client only gets produce answers");
        };
        let Some((p, crc, _)) = self.client.outstanding.remove(&request) else {
            return;
        };
        if let Ok(offset) = result {
            self.stats.acknowledged += 1;
            self.checker.acknowledged(p, offset, crc);
            if p == groups::OFFSETS_PARTITION {
                self.stats.offset_commits += 1;
                self.commits.acknowledged(request, offset);
            }
        }
    }
}
