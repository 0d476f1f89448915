//! The outbound queue's runner: takes due messages from the store, delivers each domain's
//! recipients through its next hop, records what happened, and tells the sender about
//! failures and long delays (never a sender that is null: no report loops).
//!
//! A message stays in the store until every recipient is delivered or failed, so a crash or
//! restart at any point at worst delivers a copy twice; it never loses one.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use super::client::{self, AttemptError, Hop, Outgoing};
use super::dsn::{Action, Report, ReportLine};
use super::route::{RouteError, Router};
use crate::server::ServerContext;
use crate::store::{AttemptRecord, QueuedMessage, QueuedRecipient, RecipientState};
use crate::tls::NextHopTls;

/// How often the store is asked for due messages when nothing wakes the runner.
const POLL: Duration = Duration::from_secs(2);
/// Messages taken from the store at a time.
const BATCH: u32 = 100;

/// What one attempt decided for one recipient.
#[derive(Debug, Clone)]
struct Outcome {
    state: RecipientState,
    /// Enhanced status code.
    status: String,
    /// The reply or error, for the queue listing and the report.
    text: String,
    /// The MTA that answered.
    mta: String,
    /// Delivered to a next hop that does not report success itself (no DSN).
    relayed: bool,
}

impl Outcome {
    fn from_error(permanent: bool, status: String, text: String, mta: &str) -> Outcome {
        Outcome {
            state: if permanent {
                RecipientState::Failed
            } else {
                RecipientState::Pending
            },
            status,
            text,
            mta: mta.to_string(),
            relayed: false,
        }
    }
}

/// Delivers the queue; one per server.
pub struct QueueRunner {
    ctx: Arc<ServerContext>,
    tls: NextHopTls,
    router: Router,
    in_flight: Mutex<HashSet<i64>>,
    slots: Arc<Semaphore>,
}

impl QueueRunner {
    /// A runner presenting the certificate of `tls`.
    pub fn new(ctx: Arc<ServerContext>, tls: NextHopTls) -> Arc<QueueRunner> {
        let slots = Arc::new(Semaphore::new(ctx.config.queue.max_parallel.max(1)));
        Arc::new(QueueRunner {
            router: Router::new(&ctx.config.dns),
            ctx,
            tls,
            in_flight: Mutex::new(HashSet::new()),
            slots,
        })
    }

    /// Runs forever: due messages are started as delivery slots free up.
    pub async fn run(self: Arc<Self>) {
        let wakeup = self.ctx.delivery.queue_wakeup();
        loop {
            let now = chrono::Utc::now().timestamp();
            match self.ctx.store.db().queue_due(now, BATCH).await {
                Ok(due) => {
                    for message in due {
                        self.clone().start(message).await;
                    }
                }
                Err(e) => tracing::error!(error = %e, "reading the queue failed"),
            }
            tokio::select! {
                _ = wakeup.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }

    async fn start(self: Arc<Self>, message: QueuedMessage) {
        // A message still being delivered from an earlier pass is left alone.
        let fresh = self
            .in_flight
            .lock()
            .is_ok_and(|mut in_flight| in_flight.insert(message.id));
        if !fresh {
            return;
        }
        let Ok(permit) = self.slots.clone().acquire_owned().await else {
            return;
        };
        tokio::spawn(async move {
            let id = message.id;
            self.attempt(message).await;
            if let Ok(mut in_flight) = self.in_flight.lock() {
                in_flight.remove(&id);
            }
            drop(permit);
        });
    }

    /// One attempt at every pending recipient of a message, then the record and reports.
    async fn attempt(&self, message: QueuedMessage) {
        let body = match self.ctx.store.queued_body(message.id).await {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(id = message.id, error = %e, "queued message unreadable");
                return;
            }
        };
        let mut by_domain: BTreeMap<String, Vec<&QueuedRecipient>> = BTreeMap::new();
        for r in message
            .recipients
            .iter()
            .filter(|r| r.state == RecipientState::Pending)
        {
            let domain = r.recipient.address.rsplit_once('@').map_or("", |(_, d)| d);
            let domain = mssante_directory::whitelist::a_label(domain).unwrap_or_default();
            by_domain.entry(domain).or_default().push(r);
        }
        let mut outcomes: Vec<(&QueuedRecipient, Outcome)> = Vec::new();
        for (domain, recipients) in &by_domain {
            let results = self
                .deliver_domain(&message, domain, recipients, &body)
                .await;
            outcomes.extend(recipients.iter().copied().zip(results));
        }
        let now = chrono::Utc::now().timestamp();
        let policy = &self.ctx.config.queue;
        let expired = now - message.created_at >= policy.lifetime_secs as i64;
        for (r, o) in &mut outcomes {
            if expired && o.state == RecipientState::Pending {
                o.state = RecipientState::Failed;
                o.status = "4.4.7".into();
                o.text = format!(
                    "delivery time expired after {} attempts; last error: {}",
                    message.attempts + 1,
                    o.text
                );
            }
            tracing::info!(
                id = message.id,
                to = %r.recipient.address,
                state = %o.state,
                reply = %o.text,
                "delivery attempt"
            );
        }
        let failed: Vec<_> = outcomes
            .iter()
            .filter(|(r, o)| o.state == RecipientState::Failed && r.recipient.notify.failure)
            .collect();
        self.report(&message, Action::Failed, &failed, &body, None)
            .await;
        let relayed: Vec<_> = outcomes
            .iter()
            .filter(|(r, o)| o.relayed && r.recipient.notify.success)
            .collect();
        self.report(&message, Action::Relayed, &relayed, &body, None)
            .await;
        let mut delay_notified = message.delay_notified;
        let late = policy.delay_notice_secs > 0
            && now - message.created_at >= policy.delay_notice_secs as i64;
        if late && !delay_notified {
            let delayed: Vec<_> = outcomes
                .iter()
                .filter(|(r, o)| o.state == RecipientState::Pending && r.recipient.notify.delay)
                .collect();
            let until = message.created_at + policy.lifetime_secs as i64;
            self.report(&message, Action::Delayed, &delayed, &body, Some(until))
                .await;
            delay_notified = true;
        }
        let attempts = message.attempts.saturating_add(1);
        let record = AttemptRecord {
            recipients: outcomes
                .iter()
                .map(|(r, o)| {
                    (
                        r.recipient.address.clone(),
                        o.state,
                        o.text.clone(),
                        o.mta.clone(),
                    )
                })
                .collect(),
            attempts,
            next_attempt: now + policy.backoff(attempts) as i64,
            delay_notified,
        };
        if let Err(e) = self.ctx.store.db().queue_record(message.id, &record).await {
            tracing::error!(id = message.id, error = %e, "recording a delivery attempt failed");
        }
    }

    /// Delivers to one domain's recipients; one outcome per recipient, in order.
    async fn deliver_domain(
        &self,
        message: &QueuedMessage,
        domain: &str,
        recipients: &[&QueuedRecipient],
        body: &[u8],
    ) -> Vec<Outcome> {
        let all = |o: Outcome| vec![o; recipients.len()];
        let ctx = &self.ctx;
        let hops = match self.router.next_hops(&ctx.config, &ctx.store, domain).await {
            Ok(hops) => hops,
            Err(e) => return all(route_outcome(&e)),
        };
        let outgoing = Outgoing {
            sender: &message.sender,
            recipients: recipients
                .iter()
                .map(|r| {
                    (
                        r.recipient.address.as_str(),
                        r.recipient.notify.parameter(),
                        r.recipient.orcpt.as_deref(),
                    )
                })
                .collect(),
            envelope_id: message.envelope_id.as_deref(),
            ret_full: message.ret_full,
            smtputf8: message.smtputf8,
            body,
        };
        let policy = &ctx.config.queue;
        let mut last = AttemptError::Connect {
            host: domain.to_string(),
            reason: "no host to try".into(),
        };
        let mut last_host = String::new();
        for (host, port) in &hops.hosts {
            let stream = match connect(&self.router, host, *port, policy.connect_timeout_secs).await
            {
                Ok(stream) => stream,
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            let hop = Hop {
                host,
                stream,
                helo: &ctx.config.hostname,
                tls: self.tls.clone(),
                expected_dn: &hops.expected_dn,
                reply_timeout: Duration::from_secs(policy.reply_timeout_secs),
            };
            match client::deliver(hop, &outgoing).await {
                Ok(handover) => {
                    let replies = handover.replies;
                    return recipients
                        .iter()
                        .map(|r| {
                            let reply = replies.iter().find(|(a, _)| *a == r.recipient.address);
                            match reply {
                                Some((_, reply)) => Outcome {
                                    state: if reply.is_positive() {
                                        RecipientState::Delivered
                                    } else if reply.is_permanent() {
                                        RecipientState::Failed
                                    } else {
                                        RecipientState::Pending
                                    },
                                    status: reply.status(),
                                    text: reply.to_string(),
                                    mta: host.clone(),
                                    relayed: reply.is_positive() && !handover.reports_itself,
                                },
                                None => Outcome::from_error(
                                    false,
                                    "4.4.0".into(),
                                    "no reply for this recipient".into(),
                                    host,
                                ),
                            }
                        })
                        .collect();
                }
                // The message itself was refused for good: another MX would say the same.
                Err(e) if e.is_permanent() => {
                    return all(Outcome::from_error(true, e.status(), e.to_string(), host));
                }
                Err(e) => {
                    self.audit_peer_refusal(&e, host, domain).await;
                    last = e;
                    last_host = host.clone();
                }
            }
        }
        all(Outcome::from_error(
            false,
            last.status(),
            last.to_string(),
            &last_host,
        ))
    }

    /// A next hop whose certificate we refused is a security decision: audited.
    async fn audit_peer_refusal(&self, e: &AttemptError, host: &str, domain: &str) {
        if !matches!(e, AttemptError::Tls(_) | AttemptError::WrongPeer { .. }) {
            return;
        }
        let detail = format!("{domain} via {host}: {e}");
        let outcome = crate::audit::Outcome::Refused;
        if let Err(err) = self
            .ctx
            .audit
            .record("queue.peer_refused", host, "queue", outcome, &detail)
            .await
        {
            tracing::error!(error = %err, "audit write failed");
        }
    }

    /// Sends the sender a report on `lines`, unless the sender is null or there is nothing.
    async fn report(
        &self,
        message: &QueuedMessage,
        action: Action,
        lines: &[&(&QueuedRecipient, Outcome)],
        body: &[u8],
        retry_until: Option<i64>,
    ) {
        if message.sender.is_empty() || lines.is_empty() {
            return;
        }
        // The sender is ours: the report comes from their domain.
        let from_domain = message
            .sender
            .rsplit_once('@')
            .map_or(self.ctx.config.hostname.as_str(), |(_, domain)| domain);
        let report = Report {
            reporting_mta: &self.ctx.config.hostname,
            from_domain,
            action,
            to: &message.sender,
            envelope_id: message.envelope_id.as_deref(),
            arrival: message.created_at,
            retry_until,
            recipients: lines
                .iter()
                .map(|(r, o)| ReportLine {
                    address: &r.recipient.address,
                    orcpt: r.recipient.orcpt.as_deref(),
                    status: o.status.clone(),
                    diagnostic: &o.text,
                    remote_mta: &o.mta,
                })
                .collect(),
            original: body,
            ret_full: message.ret_full,
        };
        match self
            .ctx
            .delivery
            .send_report(&message.sender, &report.build())
            .await
        {
            Ok(true) => {
                tracing::info!(id = message.id, to = %message.sender, ?action, "report sent")
            }
            Ok(false) => {
                tracing::warn!(id = message.id, to = %message.sender, "sender cannot receive a report")
            }
            Err(e) => tracing::error!(id = message.id, error = %e, "report could not be queued"),
        }
    }
}

fn route_outcome(e: &RouteError) -> Outcome {
    Outcome::from_error(e.is_permanent(), e.status().into(), e.to_string(), "")
}

async fn connect(
    router: &Router,
    host: &str,
    port: u16,
    timeout_secs: u64,
) -> Result<TcpStream, AttemptError> {
    let fail = |reason: String| AttemptError::Connect {
        host: format!("{host}:{port}"),
        reason,
    };
    let timeout = Duration::from_secs(timeout_secs);
    let addrs = tokio::time::timeout(timeout, router.addresses(host, port))
        .await
        .map_err(|_| fail("name lookup timed out".into()))?
        .map_err(fail)?;
    let mut last = fail("the name has no address".into());
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = fail(format!("{addr}: {e}")),
            Err(_) => last = fail(format!("{addr}: connection timed out")),
        }
    }
    Err(last)
}
