//! What a snapshot holds, in Kubernetes terms: live keys per resource and namespace.

use std::collections::{BTreeMap, HashMap};

use foldhash::fast::RandomState;
use serde::Serialize;

use crate::bbolt::Walker;
use crate::mvcc::{self, KeyValue};
use crate::snapshot::{Snapshot, SnapshotError};

/// Where a key sits in the Kubernetes key space.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct KeyPlace {
    /// `pods`, `services/specs`, `apps/deployments`... `(outside /registry)` for other keys.
    pub resource: String,
    /// `None` for cluster-scoped objects and keys outside `/registry`.
    pub namespace: Option<String>,
    pub name: String,
}

pub const OUTSIDE_REGISTRY: &str = "(outside /registry)";

/// Splits `/registry/<resource>/<namespace>/<name>`, `/registry/<group>/<resource>/...` and the
/// `services/specs`, `services/endpoints` specials.
pub fn classify(key: &[u8]) -> KeyPlace {
    let key = String::from_utf8_lossy(key);
    let Some(rest) = key.strip_prefix("/registry/") else {
        return KeyPlace {
            resource: OUTSIDE_REGISTRY.to_string(),
            namespace: None,
            name: key.into_owned(),
        };
    };
    let segs: Vec<&str> = rest.split('/').collect();
    let two_part = segs.len() > 2
        && (segs[0].contains('.')
            || (segs[0] == "services" && matches!(segs[1], "specs" | "endpoints")));
    let (resource, tail) = if two_part {
        (format!("{}/{}", segs[0], segs[1]), &segs[2..])
    } else {
        (segs[0].to_string(), &segs[1..])
    };
    match tail {
        [] => KeyPlace {
            resource,
            namespace: None,
            name: String::new(),
        },
        [name] => KeyPlace {
            resource,
            namespace: None,
            name: (*name).to_string(),
        },
        [ns, name @ ..] => KeyPlace {
            resource,
            namespace: Some((*ns).to_string()),
            name: name.join("/"),
        },
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeyCount {
    pub keys: u64,
    pub value_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceCount {
    pub resource: String,
    pub keys: u64,
    pub value_bytes: u64,
    /// Keys per namespace (`""` = cluster-scoped).
    pub namespaces: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeaseSummary {
    pub id: i64,
    pub ttl_seconds: i64,
    pub attached_keys: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnapshotContents {
    pub live_keys: u64,
    pub value_bytes: u64,
    /// History entries in the `key` bucket (puts and deletes not yet compacted).
    pub revisions_stored: u64,
    pub revision: i64,
    pub newest_mod_revision: i64,
    pub resources: Vec<ResourceCount>,
    pub namespaces: BTreeMap<String, KeyCount>,
    pub leases: Vec<LeaseSummary>,
    /// Live keys attached to a lease id not in the `lease` bucket.
    pub keys_with_unknown_lease: u64,
}

/// The key space at the snapshot's revision.
pub struct LiveKeys<'a> {
    pub keys: HashMap<&'a [u8], KeyValue<'a>, RandomState>,
    pub revisions_stored: u64,
    /// Main revision of the newest stored entry (what `snapshot status` prints).
    pub revision: i64,
    pub leases: Vec<mvcc::Lease>,
}

impl Snapshot {
    /// Replays the `key` bucket (in revision order) into the live key set.
    pub fn live_keys(&self) -> Result<LiveKeys<'_>, SnapshotError> {
        let bolt = self.bolt()?;
        let mut walker = Walker::new(&bolt);
        let mut live: HashMap<&[u8], KeyValue<'_>, RandomState> = HashMap::default();
        let mut stored = 0u64;
        let mut revision = 0i64;
        let mut leases = Vec::new();
        let mut bad: Option<String> = None;
        for bucket in walker.root_entries() {
            if !bucket.is_bucket {
                continue;
            }
            match bucket.key {
                b"key" => walker.walk_bucket(bucket.key, bucket.value, &mut |e| {
                    stored += 1;
                    if let Some(main) = mvcc::main_revision_lenient(e.key) {
                        revision = main;
                    }
                    match mvcc::decode_key_value(e.value) {
                        Ok(kv) if mvcc::is_tombstone(e.key) => {
                            live.remove(kv.key);
                        }
                        Ok(kv) => {
                            live.insert(kv.key, kv);
                        }
                        Err(err) => {
                            bad.get_or_insert_with(|| {
                                format!("key bucket value cannot be decoded: {err}")
                            });
                        }
                    }
                }),
                b"lease" => {
                    walker.walk_bucket(bucket.key, bucket.value, &mut |e| match mvcc::decode_lease(
                        e.value,
                    ) {
                        Ok(l) => leases.push(l),
                        Err(err) => {
                            bad.get_or_insert_with(|| {
                                format!("lease value cannot be decoded: {err}")
                            });
                        }
                    })
                }
                _ => {}
            }
        }
        let path = self.path().to_path_buf();
        if let Some(p) = walker.problems().iter().find(|p| p.kind.breaks_etcd_34()) {
            return Err(SnapshotError::Integrity {
                path,
                count: walker.problem_count(),
                first: p.message.clone(),
            });
        }
        if let Some(message) = bad {
            return Err(SnapshotError::Content { path, message });
        }
        Ok(LiveKeys {
            keys: live,
            revisions_stored: stored,
            revision,
            leases,
        })
    }

    /// Live keys per resource and namespace, value bytes, leases.
    pub fn contents(&self) -> Result<SnapshotContents, SnapshotError> {
        let live = self.live_keys()?;
        Ok(summarize(
            live.keys.values().copied(),
            live.keys.len() as u64,
            live.revisions_stored,
            live.revision,
            &live.leases,
        ))
    }
}

/// The contents summary of a live key set.
pub(crate) fn summarize<'a>(
    live: impl Iterator<Item = KeyValue<'a>>,
    live_keys: u64,
    revisions_stored: u64,
    revision: i64,
    lease_list: &[mvcc::Lease],
) -> SnapshotContents {
    let mut resources: BTreeMap<String, ResourceCount> = BTreeMap::new();
    let mut namespaces: BTreeMap<String, KeyCount> = BTreeMap::new();
    let mut lease_keys: HashMap<i64, u64> = HashMap::new();
    let (mut value_bytes, mut newest) = (0u64, 0i64);
    for kv in live {
        let place = classify(kv.key);
        let size = kv.value.len() as u64;
        value_bytes += size;
        newest = newest.max(kv.mod_revision);
        let r = resources
            .entry(place.resource.clone())
            .or_insert_with(|| ResourceCount {
                resource: place.resource.clone(),
                keys: 0,
                value_bytes: 0,
                namespaces: BTreeMap::new(),
            });
        r.keys += 1;
        r.value_bytes += size;
        let ns = place.namespace.unwrap_or_default();
        *r.namespaces.entry(ns.clone()).or_default() += 1;
        let n = namespaces.entry(ns).or_default();
        n.keys += 1;
        n.value_bytes += size;
        if kv.lease != 0 {
            *lease_keys.entry(kv.lease).or_default() += 1;
        }
    }
    let mut leases: Vec<LeaseSummary> = lease_list
        .iter()
        .map(|l| LeaseSummary {
            id: l.id,
            ttl_seconds: l.ttl,
            attached_keys: lease_keys.remove(&l.id).unwrap_or(0),
        })
        .collect();
    leases.sort_by_key(|l| l.id);
    SnapshotContents {
        live_keys,
        value_bytes,
        revisions_stored,
        revision,
        newest_mod_revision: newest,
        resources: resources.into_values().collect(),
        namespaces,
        leases,
        keys_with_unknown_lease: lease_keys.values().sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_layouts() {
        let p = classify(b"/registry/pods/default/web-1");
        assert_eq!(
            (p.resource.as_str(), p.namespace.as_deref(), p.name.as_str()),
            ("pods", Some("default"), "web-1")
        );
        let p = classify(b"/registry/deployments/kube-system/coredns");
        assert_eq!(
            (p.resource.as_str(), p.namespace.as_deref()),
            ("deployments", Some("kube-system"))
        );
        let p = classify(b"/registry/monitoring.coreos.com/prometheuses/mon/k8s");
        assert_eq!(
            (p.resource.as_str(), p.namespace.as_deref(), p.name.as_str()),
            ("monitoring.coreos.com/prometheuses", Some("mon"), "k8s")
        );
        let p =
            classify(b"/registry/apiextensions.k8s.io/customresourcedefinitions/foos.example.com");
        assert_eq!(
            (p.resource.as_str(), p.namespace, p.name.as_str()),
            (
                "apiextensions.k8s.io/customresourcedefinitions",
                None,
                "foos.example.com"
            )
        );
        let p = classify(b"/registry/services/specs/default/kubernetes");
        assert_eq!(
            (p.resource.as_str(), p.namespace.as_deref()),
            ("services/specs", Some("default"))
        );
        let p = classify(b"/registry/minions/node-1");
        assert_eq!((p.resource.as_str(), p.namespace), ("minions", None));
        assert_eq!(classify(b"/other").resource, OUTSIDE_REGISTRY);
    }
}
