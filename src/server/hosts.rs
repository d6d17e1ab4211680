//! The broker as the host of the services below it: each service defines
//! the small trait it needs (what it may read and do on its shard), and this
//! file implements it for [`Broker`]. A service gets only what its trait
//! offers; a simulation can implement the same traits without a broker.

use std::rc::Rc;

use futures::future::LocalBoxFuture;

use super::broker::Broker;
use super::catalog::CatalogOwner;
use crate::cluster::node::ImageSink;
use crate::metadata::Catalog;

/// Committed metadata images become the broker's catalog (shard 0 of a node
/// in a cluster).
impl ImageSink for Broker {
    fn apply_image(
        self: Rc<Self>,
        image: Rc<Catalog>,
    ) -> LocalBoxFuture<'static, Result<(), String>> {
        Box::pin(async move {
            CatalogOwner::sync_image(&self, &image)
                .await
                .map_err(|e| e.to_string())
        })
    }
}
