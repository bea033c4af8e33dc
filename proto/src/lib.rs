//! Generated Rust types and tonic clients/servers for the subset of the Talos
//! gRPC API (and the COSI State API Talos serves) used for etcd disaster recovery.
//!
//! Module paths mirror the proto packages, so `machine.EtcdMember` is
//! [`machine::EtcdMember`] and the COSI `State` client is
//! [`cosi::resource::state_client::StateClient`].

// Generated code: lints about its style are not ours to fix.
#![allow(
    clippy::all,
    clippy::unwrap_used,
    rust_2018_idioms,
    unused_qualifications
)]

pub mod common {
    tonic::include_proto!("common");
}

pub mod machine {
    tonic::include_proto!("machine");
}

pub mod google {
    pub mod rpc {
        tonic::include_proto!("google.rpc");
    }
}

pub mod cosi {
    pub mod resource {
        tonic::include_proto!("cosi.resource");

        pub mod meta {
            tonic::include_proto!("cosi.resource.meta");
        }
    }
}

pub mod resource {
    pub mod config {
        tonic::include_proto!("resource.config");
    }
}

/// Talos' newer resource specs (`talos.resource.definitions.*`), e.g. the block volumes.
pub mod talos {
    pub mod resource {
        pub mod definitions {
            pub mod block {
                tonic::include_proto!("talos.resource.definitions.block");
            }

            pub mod enums {
                tonic::include_proto!("talos.resource.definitions.enums");
            }
        }
    }
}

mod node;

pub use node::{InvalidNode, NODE_METADATA_KEY, with_node};

/// Largest gRPC message apid and talosctl accept (`constants.GRPCMaxMessageSize`);
/// tonic's 4 MiB default would cut off large replies.
pub const MAX_MESSAGE_SIZE: usize = 32 * 1024 * 1024;

#[cfg(test)]
mod tests;
