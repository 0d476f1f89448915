//! Which `Session` method answers which command, in which state: the dispatch tables of
//! imap-codec's commands and of those the `extension` parser knows. The methods themselves
//! live with their concept (`folders.rs`, `fetch.rs`, `search.rs`, `messages.rs`...).

use base64::Engine;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::extensions::utf8::Utf8Kind;

use super::access;
use super::extension::{Extended, SearchReturn};
use super::session::{Reply, Session};
use crate::auth::Credentials;
use crate::listener::ReadError;

impl Session<'_> {
    /// The reply to one of the commands parsed in `extension`, and the command's name.
    pub(super) async fn extended(
        &mut self,
        tag: &str,
        extended: Extended,
    ) -> Result<(&'static str, Reply), ReadError> {
        if self.user.is_none() {
            return Ok(("command", Reply::bad("Command not valid in this state")));
        }
        Ok(match extended {
            Extended::Search(search, ret) => {
                let CommandBody::Search {
                    charset,
                    criteria,
                    uid,
                } = search.body
                else {
                    return Ok(("SEARCH", Reply::bad("Invalid SEARCH")));
                };
                if self.view.is_none() {
                    return Ok(("SEARCH", Reply::bad("No mailbox selected")));
                }
                let reply = self
                    .esearch(tag, charset, criteria.as_ref(), uid, &ret)
                    .await?;
                ("SEARCH", reply)
            }
            Extended::List {
                reference,
                patterns,
                options,
            } => {
                let reply = self
                    .list_extended(&reference, &patterns, &options, false)
                    .await?;
                ("LIST", reply)
            }
            Extended::SetAcl(mailbox, identifier, rights) => (
                "SETACL",
                self.set_acl(&mailbox, &identifier, Some(&rights)).await,
            ),
            Extended::DeleteAcl(mailbox, identifier) => {
                ("DELETEACL", self.set_acl(&mailbox, &identifier, None).await)
            }
            Extended::GetAcl(mailbox) => ("GETACL", self.get_acl(&mailbox).await?),
            Extended::ListRights(mailbox, identifier) => {
                ("LISTRIGHTS", self.list_rights(&mailbox, &identifier).await?)
            }
            Extended::MyRights(mailbox) => ("MYRIGHTS", self.my_rights(&mailbox).await?),
        })
    }

    /// The reply to a command; None after LOGOUT.
    pub(super) async fn dispatch(
        &mut self,
        tag: &str,
        body: CommandBody<'static>,
    ) -> Result<Option<Reply>, ReadError> {
        let authenticated = self.user.is_some();
        let selected = self.view.is_some();
        let reply = match body {
            CommandBody::Capability => {
                let line = format!("* CAPABILITY {}\r\n", self.capabilities());
                self.push(line.as_bytes()).await?;
                Reply::ok("")
            }
            CommandBody::Noop | CommandBody::Check => {
                self.catch_up_now().await?;
                Reply::ok("")
            }
            CommandBody::Logout => {
                self.send_line("* BYE mssante logging out").await?;
                self.send_line(&format!("{tag} OK LOGOUT completed"))
                    .await?;
                return Ok(None);
            }
            CommandBody::Id { .. } => {
                self.push(b"* ID (\"name\" \"mssante\")\r\n").await?;
                Reply::ok("")
            }
            CommandBody::StartTLS if !authenticated => {
                if !self.conn.can_start_tls() {
                    Reply::bad("STARTTLS not available")
                } else {
                    self.send_line(&format!("{tag} OK Begin TLS negotiation now"))
                        .await?;
                    self.conn.start_tls().await?;
                    Reply::Sent
                }
            }
            CommandBody::Login { username, password } if !authenticated => {
                let credentials = Credentials::Password {
                    authzid: None,
                    username: String::from_utf8_lossy(username.as_ref()).into_owned(),
                    password: String::from_utf8_lossy(password.declassify().as_ref()).into_owned(),
                };
                self.login(credentials).await?
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } if !authenticated => {
                let initial = initial_response.map(|ir| {
                    let bytes = ir.declassify();
                    if bytes.is_empty() {
                        "=".to_string()
                    } else {
                        base64::engine::general_purpose::STANDARD.encode(bytes.as_ref())
                    }
                });
                self.authenticate(mechanism.as_ref(), initial).await?
            }
            CommandBody::Enable { capabilities } if authenticated => {
                let mut enabled = String::from("* ENABLED");
                for capability in capabilities.as_ref() {
                    match capability {
                        CapabilityEnable::Utf8(Utf8Kind::Accept) => {
                            self.utf8 = true;
                            enabled.push_str(" UTF8=ACCEPT");
                        }
                        CapabilityEnable::CondStore => {
                            self.enable_condstore();
                            enabled.push_str(" CONDSTORE");
                        }
                        other if other.to_string().eq_ignore_ascii_case("QRESYNC") => {
                            self.enable_qresync();
                            enabled.push_str(" QRESYNC");
                        }
                        other if other.to_string().eq_ignore_ascii_case("IMAP4rev2") => {
                            // IMAP4rev2 names folders in UTF-8 (RFC 9051 5.1).
                            self.rev2 = true;
                            self.utf8 = true;
                            enabled.push_str(" IMAP4rev2");
                        }
                        _ => {}
                    }
                }
                enabled.push_str("\r\n");
                self.push(enabled.as_bytes()).await?;
                Reply::ok("")
            }
            CommandBody::Namespace if authenticated => {
                let line = format!(
                    "* NAMESPACE ((\"\" \"/\")) ((\"{}/\" \"/\")) ((\"{}/\" \"/\"))\r\n",
                    access::OTHER_USERS,
                    access::SHARED
                );
                self.push(line.as_bytes()).await?;
                Reply::ok("")
            }
            CommandBody::Select {
                mailbox,
                parameters,
            } if authenticated => self.select(&mailbox, false, &parameters).await?,
            CommandBody::Examine {
                mailbox,
                parameters,
            } if authenticated => self.select(&mailbox, true, &parameters).await?,
            CommandBody::Unselect if selected => {
                self.view = None;
                Reply::ok("")
            }
            CommandBody::Close if selected => self.close().await?,
            CommandBody::Idle if authenticated => self.idle(tag).await?,
            body if authenticated => self.mailbox_command(tag, body).await?,
            _ => Reply::bad("Command not valid in this state"),
        };
        Ok(Some(reply))
    }

    /// Folder and message commands (authenticated and selected states).
    async fn mailbox_command(
        &mut self,
        tag: &str,
        body: CommandBody<'static>,
    ) -> Result<Reply, ReadError> {
        let selected = self.view.is_some();
        Ok(match body {
            CommandBody::Create { mailbox } => self.create(&mailbox).await,
            CommandBody::Delete { mailbox } => self.delete(&mailbox).await,
            CommandBody::Rename { from, to } => self.rename(&from, &to).await,
            CommandBody::Subscribe { mailbox } => self.subscribe(&mailbox, true).await,
            CommandBody::Unsubscribe { mailbox } => self.subscribe(&mailbox, false).await,
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } => self.list(&reference, &mailbox_wildcard, false).await?,
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } => self.list(&reference, &mailbox_wildcard, true).await?,
            CommandBody::Status {
                mailbox,
                item_names,
            } => self.status(&mailbox, &item_names).await?,
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } => self.append(&mailbox, &flags, date, message).await,
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } if selected => {
                self.fetch(&sequence_set, macro_or_item_names, uid, &modifiers)
                    .await?
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } if selected => {
                self.store(&sequence_set, kind, response, &flags, uid, &modifiers)
                    .await?
            }
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } if selected && self.rev2 => {
                self.esearch(tag, charset, criteria.as_ref(), uid, &SearchReturn::all())
                    .await?
            }
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } if selected => self.search(charset, criteria.as_ref(), uid).await?,
            CommandBody::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } if selected => {
                self.sort(
                    sort_criteria.as_ref(),
                    charset,
                    search_criteria.as_ref(),
                    uid,
                )
                .await?
            }
            CommandBody::Thread {
                algorithm,
                charset,
                search_criteria,
                uid,
            } if selected => {
                self.thread(&algorithm, charset, search_criteria.as_ref(), uid)
                    .await?
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } if selected => self.copy(&sequence_set, &mailbox, uid, false).await?,
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } if selected => self.copy(&sequence_set, &mailbox, uid, true).await?,
            CommandBody::Expunge if selected => self.expunge(None).await?,
            CommandBody::GetQuotaRoot { mailbox } => self.get_quota_root(&mailbox).await?,
            CommandBody::GetQuota { root } => self.get_quota(root.as_ref()).await?,
            CommandBody::SetQuota { .. } => {
                Reply::no("[NOPERM] Quotas are set by the administrator")
            }
            CommandBody::ExpungeUid { sequence_set } if selected => {
                self.expunge(Some(&sequence_set)).await?
            }
            CommandBody::Fetch { .. }
            | CommandBody::Store { .. }
            | CommandBody::Search { .. }
            | CommandBody::Sort { .. }
            | CommandBody::Thread { .. }
            | CommandBody::Copy { .. }
            | CommandBody::Move { .. }
            | CommandBody::Expunge
            | CommandBody::ExpungeUid { .. }
            | CommandBody::Unselect
            | CommandBody::Close => Reply::bad("No mailbox selected"),
            CommandBody::StartTLS
            | CommandBody::Login { .. }
            | CommandBody::Authenticate { .. } => Reply::bad("Already authenticated"),
            other => Reply::bad(format!("{} is not supported", other.name())),
        })
    }
}
