//! The Redis store on a Redis Cluster: the test starts a three-node cluster of its own
//! (`redis-server` and `redis-cli` from `PATH`, loopback ports the OS reports free, a
//! temporary directory; the servers are killed when the test ends), runs the whole store
//! test kit against it through `redis+cluster://`, and checks the key layout: every key of
//! one grant in one slot, different grants spread over the three nodes.
//!
//! Runs only when `TWISTED_OAUTH2_TEST_REDIS_CLUSTER=1` (`.ci/run` sets it); then a
//! missing `redis-server` fails the test rather than skipping it.
//!
//! `TWISTED_OAUTH2_TEST_REDIS_CLUSTER=1 cargo test -p twisted-oauth2 --features redis,testkit --test redis_cluster`
#![cfg(all(feature = "redis", feature = "testkit"))]

mod stores;

use std::collections::{BTreeMap, BTreeSet};

use stores::cluster::Cluster;

use twisted_oauth2::storage::{GrantId, Rotation};
use twisted_oauth2::testkit;

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("cannot build a Tokio runtime: {e}"),
    }
}

#[test]
fn store_kit_and_key_layout_on_a_three_node_cluster() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let stores = match twisted_oauth2::storage::connect(&cluster.url("kit:")).await {
            Ok(s) => s,
            Err(e) => panic!("connecting to the cluster: {e:?}"),
        };
        let passed = testkit::run_all(stores).await;
        assert_eq!(passed, testkit::CASES.len());
    });

    // The layout: 60 grants, each with two access tokens and a rotated refresh token.
    let prefix = format!("layout{:08x}:", rand::random::<u32>());
    let grants: Vec<GrantId> = (0..60).map(|_| GrantId::random()).collect();
    rt.block_on(async {
        let s = match twisted_oauth2::storage::connect(&cluster.url(&prefix)).await {
            Ok(s) => s,
            Err(e) => panic!("connecting to the cluster: {e:?}"),
        };
        for &g in &grants {
            for _ in 0..2 {
                let r = s
                    .access
                    .put_access(&testkit::digest(), &testkit::token_record(g, 3600))
                    .await;
                assert!(r.is_ok(), "put_access: {r:?}");
            }
            let (r1, r2) = (testkit::digest(), testkit::digest());
            let r = s
                .refresh
                .put_refresh(&r1, &testkit::token_record(g, 3600))
                .await;
            assert!(r.is_ok(), "put_refresh: {r:?}");
            let rot = s
                .refresh
                .rotate_refresh(&r1, &r2, &testkit::token_record(g, 3600))
                .await;
            assert_eq!(rot.ok(), Some(Rotation::Rotated));
        }
    });
    let keys = cluster.keys(&prefix);
    // grant hex -> the (node, slot) pairs and the number of its keys.
    let mut families: BTreeMap<String, (BTreeSet<(u16, u16)>, usize)> = BTreeMap::new();
    let mut pointers = BTreeMap::new();
    let mut clients = 0;
    for (&node, ks) in &keys {
        for (k, slot) in ks {
            let rest = &k[prefix.len()..];
            if let Some(tagged) = rest.strip_prefix("{g:") {
                let Some((grant, _)) = tagged.split_once('}') else {
                    panic!("unterminated hash tag in {k}");
                };
                let f = families.entry(grant.to_owned()).or_default();
                f.0.insert((node, *slot));
                f.1 += 1;
            } else if let Some(tagged) = rest.strip_prefix("{c:") {
                // The kit client's grant set, under the client's own hash tag.
                let Some((_, name)) = tagged.split_once('}') else {
                    panic!("unterminated hash tag in {k}");
                };
                assert_eq!(name, ":clg", "unexpected client key {k}");
                clients += 1;
            } else {
                assert!(rest.starts_with("ptr:"), "unexpected key {k}");
                *pointers.entry(node).or_insert(0) += 1;
            }
        }
    }
    assert_eq!(clients, 1, "one grant set for the one client");
    assert_eq!(families.len(), grants.len(), "one family per grant");
    for g in &grants {
        let hex = format!("{:032x}", g.as_u128());
        let Some((places, n)) = families.get(&hex) else {
            panic!("no keys of grant {hex}");
        };
        assert_eq!(places.len(), 1, "grant {hex}: keys in {places:?}");
        // Two access tokens, the rotated-out and the current refresh token, two indexes.
        assert_eq!(*n, 6, "grant {hex}: keys");
    }
    let nodes: BTreeSet<u16> = families
        .values()
        .flat_map(|(p, _)| p.iter().map(|(node, _)| *node))
        .collect();
    assert_eq!(nodes.len(), 3, "families spread over the nodes: {nodes:?}");
    assert_eq!(
        pointers.values().sum::<usize>(),
        4 * grants.len(),
        "one pointer per token"
    );
    assert_eq!(pointers.len(), 3, "pointers spread over the nodes");

    // A revocation removes a family's tokens from its slot and leaves its tombstone there.
    let g = grants[0];
    rt.block_on(async {
        let s = match twisted_oauth2::storage::connect(&cluster.url(&prefix)).await {
            Ok(s) => s,
            Err(e) => panic!("connecting to the cluster: {e:?}"),
        };
        let until = testkit::now() + 3600;
        assert_eq!(s.refresh.revoke_refresh_grant(g, until).await.ok(), Some(2));
        assert_eq!(s.access.revoke_access_grant(g, until).await.ok(), Some(2));
    });
    let hex = format!("{:032x}", g.as_u128());
    let left: Vec<String> = cluster
        .keys(&prefix)
        .into_values()
        .flatten()
        .map(|(k, _)| k)
        .filter(|k| k.contains(&hex))
        .collect();
    let tag = format!("{prefix}{{g:{hex}}}:");
    let mut expected = vec![format!("{tag}atx"), format!("{tag}rtx")];
    let mut left = left;
    left.sort();
    expected.sort();
    assert_eq!(left, expected, "only the tombstones remain");
}
