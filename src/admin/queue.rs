//! `mssante queue`: what waits for delivery to other operators and relayed hospitals, and
//! the operator's levers on it. Message contents are never shown, only envelopes and the
//! last reply of each recipient; deleting is audited.

use chrono::{DateTime, Utc};

use super::audit;
use crate::app::{App, CliError};
use crate::store::{QueuedMessage, RecipientState};

fn when(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| secs.to_string())
}

fn sender(m: &QueuedMessage) -> &str {
    if m.sender.is_empty() {
        "<> (delivery report)"
    } else {
        &m.sender
    }
}

async fn queued(app: &App, id: i64) -> Result<QueuedMessage, CliError> {
    app.store
        .db()
        .queue_message(id)
        .await?
        .ok_or_else(|| CliError::new(format!("queued message {id} does not exist")))
}

/// `queue list`: one block per message: id, age, attempts, sender, then the recipients still
/// pending with their last reply.
pub async fn list(app: &App) -> Result<(), CliError> {
    let queue = app.store.db().queue_list().await?;
    if queue.is_empty() {
        println!("the queue is empty");
        return Ok(());
    }
    println!(
        "{:<8} {:<20} {:>8} {:<20} SENDER",
        "ID", "QUEUED (UTC)", "ATTEMPTS", "NEXT ATTEMPT"
    );
    for m in &queue {
        println!(
            "{:<8} {:<20} {:>8} {:<20} {}",
            m.id,
            when(m.created_at),
            m.attempts,
            when(m.next_attempt),
            sender(m)
        );
        for r in m
            .recipients
            .iter()
            .filter(|r| r.state == RecipientState::Pending)
        {
            let reply = if r.last_reply.is_empty() {
                "not tried yet"
            } else {
                &r.last_reply
            };
            println!("         -> {}: {reply}", r.recipient.address);
        }
    }
    println!("{} message(s)", queue.len());
    Ok(())
}

/// `queue show ID`: the envelope and every recipient's state.
pub async fn show(app: &App, id: i64) -> Result<(), CliError> {
    let m = queued(app, id).await?;
    println!("id:            {}", m.id);
    println!("queued:        {} UTC", when(m.created_at));
    println!("sender:        {}", sender(&m));
    println!("size:          {} octets", m.size);
    println!("attempts:      {}", m.attempts);
    println!("next attempt:  {} UTC", when(m.next_attempt));
    println!(
        "delay report:  {}",
        if m.delay_notified { "sent" } else { "not sent" }
    );
    if let Some(envid) = &m.envelope_id {
        println!("envelope id:   {envid}");
    }
    println!(
        "return:        {}",
        if m.ret_full {
            "full message"
        } else {
            "headers"
        }
    );
    println!("smtputf8:      {}", if m.smtputf8 { "yes" } else { "no" });
    for r in &m.recipients {
        println!("recipient:     {} [{}]", r.recipient.address, r.state);
        if let Some(n) = r.recipient.notify.parameter() {
            println!("  notify:      {n}");
        }
        if !r.last_reply.is_empty() {
            println!("  last reply:  {}", r.last_reply);
        }
        if !r.remote_mta.is_empty() {
            println!("  remote MTA:  {}", r.remote_mta);
        }
    }
    Ok(())
}

/// `queue retry ID` or `queue retry --all`: due now; a running server picks them up within
/// seconds.
pub async fn retry(app: &App, id: Option<i64>) -> Result<(), CliError> {
    let now = Utc::now().timestamp();
    let count = app.store.db().queue_retry(id, now).await?;
    match id {
        Some(id) if count == 0 => {
            return Err(CliError::new(format!("queued message {id} does not exist")));
        }
        Some(id) => println!("message {id} will be tried again within seconds"),
        None => println!("{count} message(s) will be tried again within seconds"),
    }
    Ok(())
}

/// `queue delete ID`: removes a message without delivering it and without telling the
/// sender. Audited.
pub async fn delete(app: &App, id: i64) -> Result<(), CliError> {
    let m = queued(app, id).await?;
    app.store.db().queue_delete(id).await?;
    let pending: Vec<&str> = m
        .recipients
        .iter()
        .filter(|r| r.state == RecipientState::Pending)
        .map(|r| r.recipient.address.as_str())
        .collect();
    let detail = format!("message {id} from {} to {}", sender(&m), pending.join(", "));
    audit(app, "queue.delete", &detail).await?;
    println!("deleted {detail}");
    Ok(())
}
