//! The console's black-box tests: the real app on a loopback port, Talos faked behind
//! `TalosApi`, or reached for real over mTLS through an in-process gRPC server.

mod assets;
mod audit;
mod auth;
mod authz;
mod emulated;
mod errors;
mod evidence;
mod fake;
mod fleet;
mod health;
mod helpers;
mod machine_configs;
mod metrics;
mod notify;
mod oidc;
mod pki;
mod recovery;
mod recovery_faults;
mod replicas;
mod s3;
mod schedules;
mod snapshots;
mod startup;
mod talos_recovery;
mod talos_tls;
mod tls_node;
