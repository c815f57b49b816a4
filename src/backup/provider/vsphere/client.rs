//! A small vim25 SOAP client: what the vSphere provider needs of vCenter (or
//! ESXi) and nothing more. One session (login once, its cookie kept, a lost
//! session logged in again once), tasks followed with a property collector
//! of their own (`WaitForUpdatesEx`), never by polling.

use super::tls::{self, Trust};
use super::xml::{self, Element, escape};
use std::time::Duration;

/// What RetrieveServiceContent says.
#[derive(Debug, Clone, Default)]
struct Content {
    root_folder: String,
    property_collector: String,
    view_manager: String,
    session_manager: String,
}

pub struct Client {
    http: reqwest::Client,
    url: String,
    user: String,
    password: String,
    /// The session's service content; None until logged in (or once lost).
    content: tokio::sync::Mutex<Option<Content>>,
}

/// A vim25 fault or a transport error, in words.
pub type Fault = String;

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEnd {
    /// `info.result`'s managed object id (the snapshot, for CreateSnapshot_Task).
    Success(Option<String>),
    Error(String),
    /// Still queued or running at the deadline.
    Running,
}

/// A snapshot in a VM's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub moid: String,
    pub name: String,
    pub created: String,
    /// Its place in the chain: 1 for a root snapshot, 2 for its child, ….
    pub depth: usize,
}

fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    )
}

fn mor(kind: &str, id: &str) -> String {
    format!(r#"type="{}">{}"#, escape(kind), escape(id))
}

impl Client {
    pub fn new(
        url: &str,
        trust: &Trust,
        timeout: Duration,
        user: String,
        password: String,
    ) -> Result<Client, String> {
        Ok(Client {
            http: tls::client(trust, timeout)?,
            url: url.to_string(),
            user,
            password,
            content: tokio::sync::Mutex::new(None),
        })
    }

    /// One SOAP call; the body of the answer, or the fault in words.
    async fn call(&self, body: &str) -> Result<Element, Fault> {
        let response = self
            .http
            .post(&self.url)
            .header("Content-Type", "text/xml; charset=utf-8")
            .header("SOAPAction", "\"urn:vim25/6.7\"")
            .body(envelope(body))
            .send()
            .await
            .map_err(|e| format!("{}: {}", self.url, error_chain(&e)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| format!("{}: {}", self.url, error_chain(&e)))?;
        let doc = xml::parse(&text).map_err(|e| format!("{}: HTTP {status}, {e}", self.url))?;
        if let Some(fault) = doc.find("Fault") {
            let kind = fault
                .child("detail")
                .and_then(|d| d.children.first())
                .map(|d| d.name.trim_end_matches("Fault").to_string())
                .unwrap_or_default();
            let message = fault
                .text_of("faultstring")
                .unwrap_or("")
                .trim()
                .to_string();
            return Err(if kind.is_empty() {
                message
            } else {
                format!("{kind}: {message}")
            });
        }
        let body = doc
            .find("Body")
            .and_then(|b| b.children.first())
            .cloned()
            .ok_or_else(|| format!("{}: HTTP {status}, an answer without a body", self.url))?;
        Ok(body)
    }

    /// Logs in: the service content and the session cookie.
    async fn login(&self, slot: &mut Option<Content>) -> Result<Content, Fault> {
        let answer = self
            .call(r#"<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>"#)
            .await?;
        let text = |name: &str| {
            answer
                .find(name)
                .map(|e| e.text.clone())
                .unwrap_or_default()
        };
        let content = Content {
            root_folder: text("rootFolder"),
            property_collector: text("propertyCollector"),
            view_manager: text("viewManager"),
            session_manager: text("sessionManager"),
        };
        if content.session_manager.is_empty() || content.property_collector.is_empty() {
            return Err(format!(
                "{}: not a vSphere API endpoint (no service content)",
                self.url
            ));
        }
        self.call(&format!(
            r#"<Login xmlns="urn:vim25"><_this {}</_this><userName>{}</userName><password>{}</password></Login>"#,
            mor("SessionManager", &content.session_manager),
            escape(&self.user),
            escape(&self.password)
        ))
        .await
        .map_err(|f| format!("cannot log in to {} as {}: {f}", self.url, self.user))?;
        *slot = Some(content.clone());
        Ok(content)
    }

    pub async fn logout(&self) {
        let taken = self.content.lock().await.take();
        if let Some(c) = taken {
            let _ = self
                .call(&format!(
                    r#"<Logout xmlns="urn:vim25"><_this {}</_this></Logout>"#,
                    mor("SessionManager", &c.session_manager)
                ))
                .await;
        }
    }

    /// The session's content, logging in when there is none.
    async fn session(&self) -> Result<Content, Fault> {
        let mut slot = self.content.lock().await;
        match &*slot {
            Some(c) => Ok(c.clone()),
            None => self.login(&mut slot).await,
        }
    }

    /// Logs in at once (to check the credentials before any freeze).
    pub async fn connect(&self) -> Result<(), Fault> {
        self.session().await.map(|_| ())
    }

    /// A call in the session; a session that was lost is logged in again once.
    async fn session_call(&self, body: impl Fn(&Content) -> String) -> Result<Element, Fault> {
        let content = self.session().await?;
        match self.call(&body(&content)).await {
            Err(f) if f.starts_with("NotAuthenticated") => {
                let fresh = {
                    let mut slot = self.content.lock().await;
                    self.login(&mut slot).await?
                };
                self.call(&body(&fresh)).await
            }
            other => other,
        }
    }

    /// Every VM: (moid, name, instance UUID).
    pub async fn vms(&self) -> Result<Vec<(String, String, String)>, Fault> {
        let view = self
            .session_call(|c| {
                format!(
                    r#"<CreateContainerView xmlns="urn:vim25"><_this {}</_this><container {}</container><type>VirtualMachine</type><recursive>true</recursive></CreateContainerView>"#,
                    mor("ViewManager", &c.view_manager),
                    mor("Folder", &c.root_folder)
                )
            })
            .await?
            .text_of("returnval")
            .map(str::to_string)
            .ok_or("CreateContainerView gave no view")?;
        let mut found = Vec::new();
        let mut answer = self
            .session_call(|c| {
                format!(
                    r#"<RetrievePropertiesEx xmlns="urn:vim25"><_this {}</_this><specSet><propSet><type>VirtualMachine</type><pathSet>name</pathSet><pathSet>config.instanceUuid</pathSet></propSet><objectSet><obj {}</obj><skip>true</skip><selectSet xsi:type="TraversalSpec"><name>view</name><type>ContainerView</type><path>view</path><skip>false</skip></selectSet></objectSet></specSet><options/></RetrievePropertiesEx>"#,
                    mor("PropertyCollector", &c.property_collector),
                    mor("ContainerView", &view)
                )
            })
            .await?;
        loop {
            let mut objects = Vec::new();
            answer.find_all("objects", &mut objects);
            for o in objects {
                let moid = o.text_of("obj").unwrap_or("").to_string();
                let prop = |name: &str| {
                    o.children("propSet")
                        .find(|p| p.text_of("name") == Some(name))
                        .and_then(|p| p.text_of("val"))
                        .unwrap_or("")
                        .to_string()
                };
                found.push((moid, prop("name"), prop("config.instanceUuid")));
            }
            let Some(token) = answer.find("token").map(|t| t.text.clone()) else {
                break;
            };
            answer = self
                .session_call(|c| {
                    format!(
                        r#"<ContinueRetrievePropertiesEx xmlns="urn:vim25"><_this {}</_this><token>{}</token></ContinueRetrievePropertiesEx>"#,
                        mor("PropertyCollector", &c.property_collector),
                        escape(&token)
                    )
                })
                .await?;
        }
        let _ = self
            .session_call(|_| {
                format!(
                    r#"<DestroyView xmlns="urn:vim25"><_this {}</_this></DestroyView>"#,
                    mor("ContainerView", &view)
                )
            })
            .await;
        Ok(found)
    }

    /// Starts CreateSnapshot_Task (no memory, no quiesce: quiesce froze the
    /// instances itself); the task's moid.
    pub async fn create_snapshot(
        &self,
        vm: &str,
        name: &str,
        description: &str,
    ) -> Result<String, Fault> {
        let answer = self
            .session_call(|_| {
                format!(
                    r#"<CreateSnapshot_Task xmlns="urn:vim25"><_this {}</_this><name>{}</name><description>{}</description><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>"#,
                    mor("VirtualMachine", vm),
                    escape(name),
                    escape(description)
                )
            })
            .await?;
        answer
            .text_of("returnval")
            .map(str::to_string)
            .ok_or_else(|| "CreateSnapshot_Task gave no task".to_string())
    }

    pub async fn remove_snapshot(&self, snapshot: &str) -> Result<String, Fault> {
        let answer = self
            .session_call(|_| {
                format!(
                    r#"<RemoveSnapshot_Task xmlns="urn:vim25"><_this {}</_this><removeChildren>false</removeChildren><consolidate>true</consolidate></RemoveSnapshot_Task>"#,
                    mor("VirtualMachineSnapshot", snapshot)
                )
            })
            .await?;
        answer
            .text_of("returnval")
            .map(str::to_string)
            .ok_or_else(|| "RemoveSnapshot_Task gave no task".to_string())
    }

    pub async fn cancel_task(&self, task: &str) -> Result<(), Fault> {
        self.session_call(|_| {
            format!(
                r#"<CancelTask xmlns="urn:vim25"><_this {}</_this></CancelTask>"#,
                mor("Task", task)
            )
        })
        .await
        .map(|_| ())
    }

    /// Follows `task` until it ends or `within` passes, with a property
    /// collector of its own (so that tasks followed at once never take each
    /// other's updates).
    pub async fn wait_task(&self, task: &str, within: Duration) -> Result<TaskEnd, Fault> {
        let collector = self
            .session_call(|c| {
                format!(
                    r#"<CreatePropertyCollector xmlns="urn:vim25"><_this {}</_this></CreatePropertyCollector>"#,
                    mor("PropertyCollector", &c.property_collector)
                )
            })
            .await?
            .text_of("returnval")
            .map(str::to_string)
            .ok_or("CreatePropertyCollector gave none")?;
        let result = self.follow(&collector, task, within).await;
        let _ = self
            .session_call(|_| {
                format!(
                    r#"<DestroyPropertyCollector xmlns="urn:vim25"><_this {}</_this></DestroyPropertyCollector>"#,
                    mor("PropertyCollector", &collector)
                )
            })
            .await;
        result
    }

    async fn follow(
        &self,
        collector: &str,
        task: &str,
        within: Duration,
    ) -> Result<TaskEnd, Fault> {
        self.session_call(|_| {
            format!(
                r#"<CreateFilter xmlns="urn:vim25"><_this {}</_this><spec><propSet><type>Task</type><pathSet>info</pathSet></propSet><objectSet><obj {}</obj></objectSet></spec><partialUpdates>false</partialUpdates></CreateFilter>"#,
                mor("PropertyCollector", collector),
                mor("Task", task)
            )
        })
        .await?;
        let deadline = tokio::time::Instant::now() + within;
        let mut version = String::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(TaskEnd::Running);
            }
            let wait = left.as_secs().clamp(1, 60);
            let answer = self
                .session_call(|_| {
                    format!(
                        r#"<WaitForUpdatesEx xmlns="urn:vim25"><_this {}</_this><version>{}</version><options><maxWaitSeconds>{wait}</maxWaitSeconds></options></WaitForUpdatesEx>"#,
                        mor("PropertyCollector", collector),
                        escape(&version)
                    )
                })
                .await?;
            let Some(set) = answer.child("returnval") else {
                // No change within maxWaitSeconds.
                continue;
            };
            if let Some(v) = set.text_of("version") {
                version = v.to_string();
            }
            let mut changes = Vec::new();
            set.find_all("changeSet", &mut changes);
            for change in changes {
                let Some(info) = change.child("val") else {
                    continue;
                };
                match info.text_of("state") {
                    Some("success") => {
                        return Ok(TaskEnd::Success(info.text_of("result").map(str::to_string)));
                    }
                    Some("error") => {
                        let message = info
                            .child("error")
                            .and_then(|e| e.text_of("localizedMessage"))
                            .unwrap_or("the task failed")
                            .to_string();
                        return Ok(TaskEnd::Error(message));
                    }
                    _ => {}
                }
            }
        }
    }

    /// The VM's properties at `paths`, in one RetrievePropertiesEx.
    async fn vm_properties(&self, vm: &str, paths: &[&str]) -> Result<Element, Fault> {
        let paths: String = paths
            .iter()
            .map(|p| format!("<pathSet>{p}</pathSet>"))
            .collect();
        self.session_call(|c| {
            format!(
                r#"<RetrievePropertiesEx xmlns="urn:vim25"><_this {}</_this><specSet><propSet><type>VirtualMachine</type>{paths}</propSet><objectSet><obj {}</obj></objectSet></specSet><options/></RetrievePropertiesEx>"#,
                mor("PropertyCollector", &c.property_collector),
                mor("VirtualMachine", vm)
            )
        })
        .await
    }

    /// The VM's snapshot tree, flattened.
    pub async fn snapshots(&self, vm: &str) -> Result<Vec<Snapshot>, Fault> {
        Ok(snapshot_tree(&self.vm_properties(vm, &["snapshot"]).await?))
    }

    /// The VM's snapshot tree and its `runtime.consolidationNeeded` (its
    /// disks hold snapshot data a removal left behind), in one call.
    pub async fn snapshot_health(&self, vm: &str) -> Result<(Vec<Snapshot>, bool), Fault> {
        let answer = self
            .vm_properties(vm, &["snapshot", "runtime.consolidationNeeded"])
            .await?;
        let mut sets = Vec::new();
        answer.find_all("propSet", &mut sets);
        let consolidate = sets.iter().any(|p| {
            p.text_of("name") == Some("runtime.consolidationNeeded")
                && p.text_of("val").is_some_and(|v| v.trim() == "true")
        });
        Ok((snapshot_tree(&answer), consolidate))
    }
}

/// Every snapshot in the trees of a RetrievePropertiesEx answer, with its
/// depth in the chain.
fn snapshot_tree(answer: &Element) -> Vec<Snapshot> {
    fn walk(tree: &Element, depth: usize, out: &mut Vec<Snapshot>) {
        out.push(Snapshot {
            moid: tree.text_of("snapshot").unwrap_or("").to_string(),
            name: tree.text_of("name").unwrap_or("").to_string(),
            created: tree.text_of("createTime").unwrap_or("").to_string(),
            depth,
        });
        for child in tree.children("childSnapshotList") {
            walk(child, depth + 1, out);
        }
    }
    let mut trees = Vec::new();
    answer.find_all("rootSnapshotList", &mut trees);
    let mut out = Vec::new();
    for tree in trees {
        walk(tree, 1, &mut out);
    }
    out
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
