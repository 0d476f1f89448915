//! The S/MIME inbound pipeline alone (`bench/smime.sh` runs it): the messages an MX session
//! hands to delivery, decrypted with the mailbox's escrowed key, verified and committed by
//! the server's own code (`Delivery::accept`), from concurrent tasks on all cores, without
//! the SMTP session or a load generator competing for the cores.
//!
//!   smime_inbound CONFIG MESSAGE ADDRESS COUNT TASKS [--no-commit]
//!
//! Prints "messages seconds rate". Refuses to measure a message that does not come out
//! decrypted with a valid signature. With `--no-commit`, only the S/MIME side runs
//! (`SmimeInbound::open`: decrypt and verify), to tell its cost from the store's.

use std::sync::Arc;
use std::time::Instant;

use mssante::app::App;
use mssante::delivery::{Delivery, Protected, SmimeInbound};
use mssante::tls::TlsMaterial;

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let (args, commit) = match args.split_last() {
        Some((last, rest)) if last == "--no-commit" => (rest, false),
        _ => (args.as_slice(), true),
    };
    let [config, message, address, count, tasks] = args else {
        return Err("usage: smime_inbound CONFIG MESSAGE ADDRESS COUNT TASKS [--no-commit]".into());
    };
    let (count, tasks): (usize, usize) = (count.parse()?, tasks.parse()?);
    let (config, data_dir) = App::configure(Some(config.as_ref()), None)?;
    let app = App::open(config, data_dir).await?;
    let material = match TlsMaterial::from_config(&app.config.tls)? {
        Some(material) => material,
        None => mssante::dev::tls_material(&app, &app.test_pki().await?).await?,
    };
    let trust = material.smime_trust().map(Arc::new);
    let message = Arc::new(std::fs::read(message)?);
    let account = app
        .store
        .db()
        .find_account(address)
        .await?
        .ok_or("no such mailbox")?;

    let inbound = SmimeInbound::new(app.store.clone(), trust.clone(), usize::MAX);
    let copies = inbound.open(std::slice::from_ref(&account), &message).await;
    let opened = copies
        .first()
        .and_then(|c| c.opened.clone())
        .unwrap_or_default();
    let opened = String::from_utf8_lossy(&opened);
    if !opened.contains("X-MSSante-Encryption: decrypted")
        || !opened.contains("X-MSSante-Signature: valid")
    {
        return Err(format!(
            "the message does not open: {}",
            &opened[..opened.len().min(300)]
        )
        .into());
    }

    let delivery = Delivery::new(app.store.clone(), app.config.clone(), trust);
    let start = Instant::now();
    let mut running = Vec::new();
    for task in 0..tasks {
        let (delivery, message, account) = (delivery.clone(), message.clone(), account.clone());
        let inbound = inbound.clone();
        let share = count / tasks + usize::from(task < count % tasks);
        running.push(tokio::spawn(async move {
            for _ in 0..share {
                if !commit {
                    inbound.open(std::slice::from_ref(&account), &message).await;
                    continue;
                }
                delivery
                    .accept(
                        std::slice::from_ref(&account),
                        None,
                        &message,
                        Protected::default(),
                    )
                    .await?;
            }
            Ok::<_, mssante::store::StoreError>(())
        }));
    }
    for task in running {
        task.await??;
    }
    let seconds = start.elapsed().as_secs_f64();
    println!("{count} {seconds:.3} {:.1}", count as f64 / seconds);
    Ok(())
}
