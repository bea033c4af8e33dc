//! The emulator's integration tests (one binary): real etcd members behind emulated Talos nodes.
//!
//! Every test forms its own cluster on its own loopback addresses so tests run in parallel:
//! transport tests use 127.0.2.x, node behaviour tests 127.0.3.x to 127.0.9.x, recovery call
//! counters and holds 127.0.54.x to 127.0.55.x, etcd volume layouts 127.0.110.x.

mod control_api;
mod etcd_volumes;
mod node_bootstrap;
mod node_recovery;
mod node_snapshot;
mod node_support;
mod recovery_calls;
mod transport;
mod transport_support;
