//! The writing side of a connection: answers written in request order,
//! each within the idle bound.

use std::rc::Rc;
use std::time::Duration;

use futures_lite::AsyncWriteExt;
use glommio::channels::local_channel;
use glommio::sync::Semaphore;

use super::{CloseReason, Half, InFlight, ShardConnections, Shared};
use crate::limits;
use crate::server::dispatch::Outcome;
use crate::server::frame::Frame;

/// Writes the answers in the order their requests came. A client that
/// does not take a whole answer within the idle bound is cut off: it does
/// not read (or reads so little that its answers would pile up). "No
/// progress for the idle bound" is not enough: the kernel buffers of a
/// client that reads nothing keep taking a few hundred KB every few seconds
/// (seen on loopback under CPU load), which would keep such a connection,
/// and the answers queued for it, alive for ever.
pub(super) async fn write_responses(
    mut writer: Half,
    shard: Rc<ShardConnections>,
    responses: local_channel::LocalReceiver<InFlight>,
    budget: Rc<Semaphore>,
    shared: Rc<Shared>,
    close: local_channel::LocalSender<CloseReason>,
) {
    while let Some(in_flight) = responses.recv().await {
        let answered = in_flight.response.await;
        budget.signal(in_flight.bytes);
        let close_after = match &answered.outcome {
            Outcome::ReplyThenClose(_, reason) => Some(reason.clone()),
            _ => None,
        };
        let result = match answered.outcome {
            Outcome::Reply(response) | Outcome::ReplyThenClose(response, _) => {
                let written = write_within(&mut writer, &response, shard.max_idle).await;
                if written.is_ok() {
                    in_flight.meter.sent(answered.at);
                }
                if response.len() > limits::CONNECTION_LARGE_FRAME_BYTES {
                    // Its records (read from disk, maybe on another shard)
                    // are freed with it.
                    shard.add_freed(response.len());
                }
                shared
                    .responses_queued
                    .set(shared.responses_queued.get().saturating_sub(response.len()));
                written
            }
            Outcome::NoReply => Ok(()),
            Outcome::Close(reason) => Err(CloseReason::Handler(reason)),
        };
        // The answer went out (a failed SASL authentication): now close.
        let result = match (result, close_after) {
            (Ok(()), Some(reason)) => Err(CloseReason::Handler(reason)),
            (result, _) => result,
        };
        shared
            .in_flight
            .set(shared.in_flight.get().saturating_sub(1));
        if let Err(reason) = result {
            let _ = close.try_send(reason);
            return;
        }
    }
}

/// Writes one answer whole, or says why not: the client went away, or did
/// not take it within `limit`.
async fn write_within(
    writer: &mut Half,
    response: &Frame,
    limit: Option<Duration>,
) -> Result<(), CloseReason> {
    let write = async {
        for part in response.parts() {
            writer.write_all(part).await.map_err(CloseReason::Write)?;
        }
        // TLS may hold the last record's bytes until flushed; plain TCP
        // holds nothing (its flush does no work).
        writer.flush().await.map_err(CloseReason::Write)
    };
    let Some(limit) = limit else {
        return write.await;
    };
    // Most answers fit in the socket buffer at once: no timer for those.
    let mut write = std::pin::pin!(write);
    if let Some(done) = futures_lite::future::poll_once(&mut write).await {
        return done;
    }
    let late = async {
        glommio::timer::sleep(limit).await;
        Err(CloseReason::Unread {
            bytes: response.len(),
            limit,
        })
    };
    futures_lite::future::or(write, late).await
}
