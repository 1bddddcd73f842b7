//! Unit tests of the Redis store: URL parsing, error mapping, key layout.

use super::*;

#[test]
fn key_prefix_is_split_off_the_url() {
    let (u, p) = split_prefix("redis://127.0.0.1:6379/0?key_prefix=t1:").unwrap();
    assert_eq!(u, "redis://127.0.0.1:6379/0");
    assert_eq!(p.as_deref(), Some("t1:"));
    let (u, p) = split_prefix("redis://h/1?protocol=resp3&key_prefix=a").unwrap();
    assert_eq!(u, "redis://h/1?protocol=resp3");
    assert_eq!(p.as_deref(), Some("a"));
    let (u, p) = split_prefix("redis://h").unwrap();
    assert_eq!((u.as_str(), p), ("redis://h", None));
}

#[test]
fn cluster_urls_name_every_node_with_the_credentials() {
    let (nodes, p) =
        parse_cluster_url("redis+cluster://:pw@10.0.0.1:7001, 10.0.0.2:7002/?key_prefix=t:")
            .unwrap();
    assert_eq!(
        nodes,
        ["redis://:pw@10.0.0.1:7001", "redis://:pw@10.0.0.2:7002"]
    );
    assert_eq!(p.as_deref(), Some("t:"));
    let (nodes, p) = parse_cluster_url("REDIS+CLUSTER://[::1]:7001").unwrap();
    assert_eq!((nodes, p), (vec!["redis://[::1]:7001".to_owned()], None));
    for bad in [
        "redis+cluster://",
        "redis+cluster://h1:7001,",
        "redis+cluster://h1",
        "redis+cluster://h1:0",
        "redis+cluster://h1:70000",
        "redis+cluster://h1:7001/0",
        "redis+cluster://:s3cret@h1:7001?db=1",
        "redis://h1:7001",
    ] {
        match parse_cluster_url(bad) {
            Err(StorageError::Other(e)) => {
                assert!(!e.to_string().contains("s3cret"), "{bad}: {e}")
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert!(is_cluster_url(" redis+cluster://h:1"));
    assert!(!is_cluster_url("redis://h:1"));
}

#[test]
fn cluster_keys_of_one_grant_share_a_hash_tag() {
    assert!(check_cluster_prefix("oauth2:").is_ok());
    assert!(check_cluster_prefix("a{b}:").is_err());
    let g = GrantId(0xab);
    let t = TokenDigest([7; 32]);
    let hex = t.to_hex();
    let cluster = Keys {
        prefix: "p:".into(),
        layout: Layout::Cluster,
    };
    let tag = "p:{g:000000000000000000000000000000ab}:";
    assert_eq!(cluster.token_key(&ACCESS, g, &t), format!("{tag}at:{hex}"));
    assert_eq!(cluster.token_key(&REFRESH, g, &t), format!("{tag}rt:{hex}"));
    assert_eq!(cluster.grant_key(ACCESS.index, g), format!("{tag}atg"));
    assert_eq!(cluster.grant_key(REFRESH.tomb, g), format!("{tag}rtx"));
    assert_eq!(cluster.pointer_key(&ACCESS, &t), format!("p:ptr:at:{hex}"));
    let single = Keys {
        prefix: "p:".into(),
        layout: Layout::Single,
    };
    assert_eq!(single.token_key(&ACCESS, g, &t), format!("p:at:{hex}"));
    assert_eq!(
        single.grant_key(REFRESH.index, g),
        "p:rtg:000000000000000000000000000000ab"
    );
    assert_eq!(
        parse_grant("000000000000000000000000000000ab").ok(),
        Some(g)
    );
    for bad in [
        "ab",
        "+00000000000000000000000000000ab",
        "zz000000000000000000000000000000",
    ] {
        assert!(
            matches!(parse_grant(bad), Err(StorageError::Corrupt(_))),
            "{bad}"
        );
    }
}
