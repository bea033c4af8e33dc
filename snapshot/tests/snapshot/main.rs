//! The snapshot inspector against real etcd 3.4 files and etcdctl.

mod contents;
mod damaged;
mod etcd;
mod fixtures;
mod inspect;
mod status;
mod verdict;
