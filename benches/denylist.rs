//! A million live revocations: the memory they take and how fast they load and answer.
//!
//!   cargo bench --bench denylist            (ROWS=1000000 by default)
//!
//! Part 1 compares, in one process, the denylist's table (128-bit keyed hashes, 24 bytes an
//! entry) with the map it replaced (a moka cache of `"kind:value"` strings with a per-entry
//! expiry): resident memory added by 1M entries, insert time, and a check (three lookups, as
//! `Denylist::is_revoked` does). Part 2 loads 1M rows from a fresh SQLite database through
//! `Denylist::load`, the start-up path, and reports its time and the memory it leaves.
//! Resident memory is `VmRSS` of this process, read after each step.

use std::time::{Duration, Instant};

use keymint::revocation::table::Table;
use keymint::revocation::{Denylist, Kind};

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn values(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "{:032x}",
                (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
            )
        })
        .collect()
}

struct Expire;
impl moka::Expiry<String, i64> for Expire {
    fn expire_after_create(&self, _: &String, _: &i64, _: Instant) -> Option<Duration> {
        Some(Duration::from_secs(3600))
    }
}

fn main() {
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let vals = values(rows);
    println!("denylist bench: {rows} live revocations");
    // PART=load: only part 2, so its resident memory is measured in a fresh process.
    if std::env::var("PART").as_deref() != Ok("load") {
        compare_structures(rows, &vals);
    }
    load(rows, vals);
}

fn compare_structures(rows: usize, vals: &[String]) {
    let probes = values(rows + 100_000);

    // --- the table
    let before = rss_mib();
    let probes = &probes[rows..]; // absent: the common case (a valid token)
    let t0 = Instant::now();
    let table = Table::new();
    for v in vals {
        table.insert(Kind::Jti, v, 2_000_000_000);
    }
    let insert_table = t0.elapsed();
    let mem_table = rss_mib() - before;
    let t0 = Instant::now();
    let mut hits = 0;
    for p in probes {
        hits += usize::from(
            table.contains(Kind::Jti, p)
                || table.contains(Kind::Sid, p)
                || table.contains(Kind::Client, p),
        );
    }
    let check_table = t0.elapsed() / probes.len() as u32;
    assert_eq!(hits, 0);
    assert!(vals.iter().take(1000).all(|v| table.contains(Kind::Jti, v)));
    drop(table);

    // --- the map it replaced: moka<String, i64> keyed "kind:value"
    let before = rss_mib();
    let t0 = Instant::now();
    let cache: moka::sync::Cache<String, i64> =
        moka::sync::Cache::builder().expire_after(Expire).build();
    for v in vals {
        cache.insert(format!("jti:{v}"), 2_000_000_000);
    }
    cache.run_pending_tasks();
    let insert_moka = t0.elapsed();
    let mem_moka = rss_mib() - before;
    let t0 = Instant::now();
    let mut hits = 0;
    for p in probes {
        hits += usize::from(
            cache.contains_key(&format!("jti:{p}"))
                || cache.contains_key(&format!("sid:{p}"))
                || cache.contains_key(&format!("cid:{p}")),
        );
    }
    let check_moka = t0.elapsed() / probes.len() as u32;
    assert_eq!(hits, 0);
    drop(cache);

    println!("| structure | RSS added by {rows} entries | insert all | one check (3 lookups) |");
    println!("|---|---|---|---|");
    println!(
        "| moka<String, i64> (before) | {mem_moka:.1} MiB | {insert_moka:.2?} | {check_moka:.0?} |"
    );
    println!(
        "| revocation::table (after) | {mem_table:.1} MiB | {insert_table:.2?} | {check_table:.0?} |"
    );
}

/// Start-up: `Denylist::load` of `rows` SQLite rows.
fn load(rows: usize, vals: Vec<String>) {
    // --- start-up: Denylist::load of `rows` SQLite rows
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/bench.db", dir.path().display());
        let db = keymint::db::connect(&url).await.expect("connect");
        keymint::db::migrate(&db).await.expect("migrate");
        use sea_orm::ConnectionTrait;
        let now = keymint::clock::system_now();
        let t0 = Instant::now();
        db.execute_unprepared(&format!(
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {rows}) \
             INSERT INTO revocations (kind, value, expires_at, created_at, reason) \
             SELECT 'jti', lower(hex(randomblob(16))), {}, {now}, 'bench' FROM c",
            now + 3600
        ))
        .await
        .expect("seed");
        println!("seeded {rows} rows in {:.2?}", t0.elapsed());
        drop(vals);
        let before = rss_mib();
        let t0 = Instant::now();
        let list = Denylist::load(db.clone(), keymint::clock::Clock::system(), now)
            .await
            .expect("load");
        let load = t0.elapsed();
        let after = rss_mib();
        assert_eq!(list.len() as usize, rows);
        println!(
            "Denylist::load of {rows} SQLite rows: {load:.2?}; RSS {before:.1} -> {after:.1} MiB (+{:.1}); targets: <= 1 s, <= 100 MiB",
            after - before
        );
        println!(
            "KMRESULT mode=denylist rows={rows} load_s={:.3} rss_added_mib={:.1} rss_after_mib={after:.1}",
            load.as_secs_f64(),
            after - before
        );
    });
}
