//! A fleet on a three-master Redis Cluster (started by the test on free loopback ports with
//! `redis-cli --cluster create`, stopped at the end): two pools whose hash tags land on
//! different masters, neither of them the seed node the handles are configured with, both
//! sharing entries, keeping L1 coherent within 100 ms (the notices are published on the pool's
//! master and heard on the seed node) and evicting by fleet-wide health exactly at the
//! threshold.
//!
//! Skipped with a message when redis-server is not installed, unless `PWCACHE_REQUIRE_REDIS` is
//! set (scripts/test-all.sh sets it and installs redis-server).

mod common;
mod redis_server;

use common::{time_until, url_of};

use std::path::Path;
use std::time::{Duration, Instant};

use pwcache::{CacheConfig, CacheManager, EntryInput};
use redis_server::{RedisCluster, on_pool, open_coherent, served_from_l1};

fn config(dir: &Path, seed: &str, namespace: &str) -> CacheConfig {
    let mut config = on_pool(common::config_in(dir), seed, namespace, 500);
    config.shared.cluster = true;
    config
}

/// A coherent handle on [`config`], its shared tier up.
fn open(dir: &Path, seed: &str, namespace: &str) -> CacheManager {
    let cache = open_coherent(config(dir, seed, namespace));
    assert!(
        !cache.statistics().shared_degraded,
        "{}",
        cache.statistics().to_json()
    );
    cache
}

/// Two namespaces served by two different masters, neither of them the seed (node 0).
fn namespaces_on_two_other_masters(cluster: &RedisCluster) -> [(String, u16); 2] {
    let mut found: Vec<(String, u16)> = Vec::new();
    for i in 0..200 {
        let namespace = format!("pool-{i}");
        let port = cluster
            .node_of(&format!("pwcache:{{{namespace}}}:idx"))
            .port;
        if port != cluster.nodes[0].port && found.iter().all(|(_, p)| *p != port) {
            found.push((namespace, port));
        }
        if found.len() == 2 {
            return [found[0].clone(), found[1].clone()];
        }
    }
    panic!("no two namespaces on the two other masters among 200");
}

#[test]
fn two_pools_on_different_masters_share_stay_coherent_and_evict_by_health() {
    let Some(cluster) = RedisCluster::start("fleet on a cluster") else {
        return;
    };
    let seed = cluster.url();
    for (namespace, port) in namespaces_on_two_other_masters(&cluster) {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let a = open(da.path(), &seed, &namespace);
        let b = open(db.path(), &seed, &namespace);

        a.put("k", EntryInput::with_url("http://10.0.0.1:8080"))
            .unwrap();
        assert_eq!(url_of(&b, "k").as_deref(), Some("http://10.0.0.1:8080"));
        // The entry lives on the namespace's master; the seed redirects to it.
        let entry = format!("pwcache:{{{namespace}}}:e:k");
        let exists_on = |port: u16| {
            let node = cluster.nodes.iter().find(|n| n.port == port).unwrap();
            redis::cmd("EXISTS")
                .arg(&entry)
                .query::<bool>(&mut node.connection())
        };
        assert!(exists_on(port).unwrap());
        let redirected = exists_on(cluster.nodes[0].port).unwrap_err();
        assert!(
            redirected.to_string().to_uppercase().contains("MOVED"),
            "{redirected}"
        );

        // B holds it in L1, then A replaces and deletes it: B follows within 100 ms.
        time_until(Duration::from_secs(2), || {
            served_from_l1(&b, "k", "http://10.0.0.1:8080")
        })
        .expect("B's L1 never kept the entry");
        a.put("k", EntryInput::with_url("http://10.0.0.2:8080"))
            .unwrap();
        let replaced = time_until(Duration::from_secs(2), || {
            url_of(&b, "k").as_deref() == Some("http://10.0.0.2:8080")
        })
        .expect("B never saw the replacement");
        a.delete("k").unwrap();
        let deleted = time_until(Duration::from_secs(2), || url_of(&b, "k").is_none())
            .expect("B kept serving a deleted key");
        assert!(
            replaced < Duration::from_millis(100) && deleted < Duration::from_millis(100),
            "{namespace}: replacement seen after {replaced:?}, delete after {deleted:?}"
        );

        // Fleet-wide health: failures from both handles count together; the third evicts,
        // once, and neither handle serves the proxy afterwards.
        a.put("h", EntryInput::with_url("http://10.0.0.3:8080"))
            .unwrap();
        assert!(!a.invalidate_by_health("h").unwrap());
        assert!(!b.invalidate_by_health("h").unwrap());
        assert_eq!(b.get("h").unwrap().unwrap().failure_count, 2);
        assert!(
            a.invalidate_by_health("h").unwrap(),
            "the third failure evicts"
        );
        time_until(Duration::from_secs(2), || url_of(&b, "h").is_none())
            .expect("B kept serving an evicted proxy");
        assert_eq!(url_of(&a, "h"), None);
        assert!(!a.statistics().shared_degraded && !b.statistics().shared_degraded);
        eprintln!(
            "cluster, {namespace} on port {port}: replacement seen after {replaced:?}, \
             delete after {deleted:?}"
        );
    }
}

#[test]
fn the_pools_master_killed_and_restarted_calls_answer_in_bounded_time_and_nothing_is_lost() {
    let Some(mut cluster) = RedisCluster::start("fleet on a cluster: a master killed") else {
        return;
    };
    let seed = cluster.url();
    let [(namespace, port), _] = namespaces_on_two_other_masters(&cluster);
    let dir = tempfile::tempdir().unwrap();
    let cache = open(dir.path(), &seed, &namespace);
    cache
        .put("before", EntryInput::with_url("http://10.0.0.1:1"))
        .unwrap();
    let master = cluster.nodes.iter().position(|n| n.port == port).unwrap();
    cluster.nodes[master].kill();
    // A call may pay the connect timeout (500 ms) for each of its tries (a first one and
    // CLUSTER_RETRIES = 2 more) before the fail-fast window starts.
    let limit = Duration::from_millis(3 * 500 + 500);
    let mut slowest = Duration::ZERO;
    for i in 0..10 {
        let key = format!("down-{i}");
        let start = Instant::now();
        cache
            .put(&key, EntryInput::with_url("http://10.0.0.2:2"))
            .unwrap();
        assert!(cache.get(&key).unwrap().is_some(), "{key} lost");
        assert!(cache.get("before").unwrap().is_some(), "before lost");
        slowest = slowest.max(start.elapsed());
        assert!(start.elapsed() < limit, "{key}: {:?}", start.elapsed());
    }
    assert!(cache.statistics().shared_degraded);
    cluster.nodes[master].restart();
    let recovered = time_until(Duration::from_secs(15), || {
        let _ = cache.get("probe");
        !cache.statistics().shared_degraded
    })
    .expect("never recovered after the master came back");
    for i in 0..10 {
        assert!(cache.get(&format!("down-{i}")).unwrap().is_some());
    }
    eprintln!(
        "cluster master of {namespace} killed: slowest put+2 gets {slowest:?}; recovered \
         {recovered:?} after its restart"
    );
}
