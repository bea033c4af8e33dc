//! Tests against real etcd 3.4 snapshots and a real S3-compatible server (moto).

mod disk_full;
mod fixtures;
mod ingest_local;
mod ingest_s3;
mod keys;
mod rehearsals;
