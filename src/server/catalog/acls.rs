//! ACL changes (CreateAcls, DeleteAcls): made on shard 0 like every
//! catalog change, so a single node persists them in its catalog file and
//! a cluster commits them through the controller quorum; every shard's
//! authorizer follows its catalog copy.

use std::rc::Rc;

use futures::future::LocalBoxFuture;

use super::{CatalogError, CatalogOwner};
use crate::acl::{AclBinding, AclFilter, ACLS_MAX};
use crate::server::broker::Broker;
use crate::shard::mesh::{MeshError, ShardCall};

impl CatalogOwner {
    /// Adds ACLs (already validated); ones already there are kept once.
    pub async fn create_acls(
        broker: &Rc<Broker>,
        acls: Vec<AclBinding>,
    ) -> Result<(), CatalogError> {
        Self::change(broker, false, |catalog| {
            let new = acls.iter().filter(|a| !catalog.acls.contains(*a)).count();
            if catalog.acls.len() + new > ACLS_MAX {
                return Err(CatalogError::InvalidConfig(format!(
                    "the cluster holds at most {ACLS_MAX} ACLs"
                )));
            }
            catalog.acls.extend(acls);
            catalog.version += 1;
            Ok(())
        })
        .await
    }

    /// Removes the ACLs each filter selects; answers them, per filter.
    pub async fn delete_acls(
        broker: &Rc<Broker>,
        filters: Vec<AclFilter>,
    ) -> Result<Vec<Vec<AclBinding>>, CatalogError> {
        Self::change(broker, false, |catalog| {
            let matched: Vec<Vec<AclBinding>> = filters
                .iter()
                .map(|f| {
                    catalog
                        .acls
                        .iter()
                        .filter(|a| f.matches(a))
                        .cloned()
                        .collect()
                })
                .collect();
            for acl in matched.iter().flatten() {
                catalog.acls.remove(acl);
            }
            catalog.version += 1;
            Ok(matched)
        })
        .await
    }
}

/// To shard 0: add these ACLs.
pub struct CreateAcls(pub Vec<AclBinding>);

impl ShardCall<Broker> for CreateAcls {
    type Reply = Result<(), CatalogError>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move { CatalogOwner::create_acls(&broker, self.0).await })
    }
    fn unreachable(e: MeshError) -> Self::Reply {
        Err(CatalogError::Unavailable(e.to_string()))
    }
}

/// To shard 0: remove the ACLs these filters select.
pub struct DeleteAcls(pub Vec<AclFilter>);

impl ShardCall<Broker> for DeleteAcls {
    type Reply = Result<Vec<Vec<AclBinding>>, CatalogError>;
    fn serve(self, broker: Rc<Broker>) -> LocalBoxFuture<'static, Self::Reply> {
        Box::pin(async move { CatalogOwner::delete_acls(&broker, self.0).await })
    }
    fn unreachable(e: MeshError) -> Self::Reply {
        Err(CatalogError::Unavailable(e.to_string()))
    }
}
