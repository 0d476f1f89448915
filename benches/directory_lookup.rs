//! Recipient lookups against the national directory, as outbound S/MIME makes them when its
//! cache has no answer: one search by address for the entry and its certificate, on one
//! bound connection, for addresses drawn from the imported extract. Prints p50, p99 and the
//! slowest, in milliseconds. Run by bench/directory.sh (which imports the extract first):
//!
//!   directory_lookup URL BASE_DN BIND_DN PASSWORD_FILE ADDRESSES_FILE COUNT

use std::time::{Duration, Instant};

use mssante_directory::{DirectoryConfig, DirectorySession};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, base_dn, bind_dn, password_file, addresses_file, count] = args.as_slice() else {
        eprintln!("usage: directory_lookup URL BASE_DN BIND_DN PASSWORD_FILE ADDRESSES_FILE COUNT");
        std::process::exit(2);
    };
    let read = |path: &str| {
        std::fs::read_to_string(path).unwrap_or_else(|e| {
            eprintln!("{path}: {e}");
            std::process::exit(2)
        })
    };
    let addresses: Vec<String> = read(addresses_file).lines().map(str::to_string).collect();
    let count: usize = count.parse().unwrap_or(10_000);
    let config = DirectoryConfig {
        url: url.clone(),
        base_dn: base_dn.clone(),
        bind_dn: Some(bind_dn.clone()),
        bind_password: read(password_file).trim().to_string(),
        tls: None,
        starttls: false,
        timeout: Duration::from_secs(5),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| {
            eprintln!("runtime: {e}");
            std::process::exit(2)
        });
    let mut latencies = runtime.block_on(async {
        let mut session = DirectorySession::open(&config).await.unwrap_or_else(|e| {
            eprintln!("directory: {e}");
            std::process::exit(1)
        });
        let mut latencies = Vec::with_capacity(count);
        // A cheap spread over the addresses (a multiplicative step, coprime with most sizes).
        let mut i = 0usize;
        let mut found = 0usize;
        for _ in 0..count {
            i = (i + 7919) % addresses.len().max(1);
            let started = Instant::now();
            match session.find(&addresses[i]).await {
                Ok(entry) => found += usize::from(entry.is_some()),
                Err(e) => {
                    eprintln!("lookup {}: {e}", addresses[i]);
                    std::process::exit(1)
                }
            }
            latencies.push(started.elapsed());
        }
        eprintln!("{found} of {count} addresses found");
        latencies
    });
    latencies.sort();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        latencies
            .get(index)
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1000.0
    };
    println!(
        "lookups {} p50_ms {:.3} p99_ms {:.3} max_ms {:.3}",
        latencies.len(),
        at(0.50),
        at(0.99),
        at(1.0)
    );
}
