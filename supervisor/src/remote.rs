//! Remote custom modules: a vendor's process connects over QUIC (ALPN
//! `vcp-module/1`) with its module credential, registers its spec, and is
//! then solicited like a built-in module. This task is a thin driver of
//! the connection's [`ModuleSession`]: it checks the registration against
//! the configuration (the module must be configured and used by its
//! customer's virtual control plane for the kind it registers), hands it
//! the rounds' solicitations and hands the answers back to the rounds. A
//! module that errs, hangs or disconnects loses only its own rounds; one
//! that breaks the protocol is closed, and the fault is recorded.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn, Instrument};
use vcp_common::frame::{Registered, PROTOCOL_VERSION};
use vcp_common::module::ModuleSpec;
use vcp_common::protocol::close;
use vcp_common::session::module::{ModuleEvent, ModuleSession, ModuleSessionLimits};
use vcp_common::session::Close;

use crate::config::CustomModuleConfig;
use crate::live::Claim;
use crate::modules::instance::{Ask, Fault, ModuleInstance};
use crate::stream::{self, Pipe, Read};
use vcp_core::constraints::ModuleLimits;
use vcp_core::instance::Instance;
use vcp_core::plane::{ControlPlane, ModuleRef};
use vcp_core::stats::ModuleStats;

/// What a remote module's session needs of the supervisor: the
/// configuration of custom modules, the planes in force, the counters of
/// an earlier session, and a place in the rounds.
pub trait ModuleHost: Send + Sync {
    fn custom(&self, id: &str) -> Option<&CustomModuleConfig>;
    /// The limits of a custom module that names none.
    fn module_limits(&self) -> ModuleLimits;
    fn planes(&self) -> Arc<Vec<Arc<ControlPlane>>>;
    fn known_stats(&self, id: &str, plane: &str) -> Option<Arc<ModuleStats>>;
    /// Puts the instance in its kind's rounds (replacing an earlier one).
    fn register(&self, instance: Arc<ModuleInstance>);
    /// Takes the instance out of the rounds.
    fn unregister(&self, instance: &ModuleInstance);
}

/// Serves the connection of module `module_id` (named by its
/// certificate) until it ends.
pub async fn serve(
    control: Arc<dyn ModuleHost>,
    conn: quinn::Connection,
    module_id: String,
    limits: ModuleSessionLimits,
    claim: Claim,
) {
    let span = tracing::info_span!("module", remote = %conn.remote_address(), module = %module_id);
    async move {
        let session = ModuleSession::new(&module_id, limits, Instant::now());
        let mut d = Driver {
            control: &*control,
            conn: &conn,
            session,
            instance: None,
            pending: None,
        };
        let end = d.run().await;
        d.finish(&end);
        match &end {
            Err(why) => info!(reason = %why, "module connection ended"),
            Ok(c) if c.by_peer || c.code == close::NORMAL => {
                info!(reason = %c.reason, "module session ended")
            }
            Ok(c) => warn!(code = c.code, reason = %c.reason, "closed the module's connection"),
        }
        drop(claim);
    }
    .instrument(span)
    .await
}

enum Wake {
    Read(Read),
    Timeout,
    Ask(Option<Ask>),
    Retired,
}

/// The next solicitation, or never without an instance.
async fn recv(inbox: Option<&mut tokio::sync::mpsc::Receiver<Ask>>) -> Option<Ask> {
    match inbox {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

struct Driver<'a> {
    control: &'a dyn ModuleHost,
    conn: &'a quinn::Connection,
    session: ModuleSession,
    instance: Option<(Arc<ModuleInstance>, tokio::sync::mpsc::Receiver<Ask>)>,
    /// The round the module was solicited for and has not answered.
    pending: Option<Ask>,
}

impl Driver<'_> {
    /// `Ok` with how the session closed, `Err` when the connection went.
    async fn run(&mut self) -> Result<Close, String> {
        let mut pipe = match Pipe::accept(self.conn, self.session.poll_timeout()).await {
            Ok(p) => p,
            Err(e) => return Err(e.to_string()),
        };
        if pipe.is_none() {
            self.session.handle_timeout(Instant::now());
        }
        loop {
            while let Some(ev) = self.session.poll_event() {
                match ev {
                    ModuleEvent::Register(spec) => self.register(spec),
                    ModuleEvent::Response {
                        round,
                        proposals,
                        at,
                    } => {
                        if let (Some(ask), Some((m, _))) = (self.pending.take(), &self.instance) {
                            debug_assert_eq!(ask.solicitation.round, round);
                            ask.deliver_at(Ok(proposals), &m.stats, at);
                        }
                    }
                    ModuleEvent::Closed(c) => {
                        let last = self.session.take_transmit();
                        stream::close(self.conn, pipe.as_mut(), &last, &c).await;
                        return Ok(c);
                    }
                }
            }
            let Some(p) = pipe.as_mut() else {
                return Err("no stream opened".into());
            };
            p.write(&self.session.take_transmit()).await?;
            let idle = self.session.is_idle();
            let (inbox, retired) = match &mut self.instance {
                Some((m, rx)) => (Some(rx), Some(m.clone())),
                None => (None, None),
            };
            let timeout = self.session.poll_timeout();
            let wake = tokio::select! {
                r = p.read() => Wake::Read(r),
                _ = stream::until(timeout) => Wake::Timeout,
                ask = recv(inbox), if idle => Wake::Ask(ask),
                _ = async { match &retired { Some(m) => m.retired().await, None => std::future::pending().await } } => Wake::Retired,
            };
            match wake {
                Wake::Read(Read::Bytes(bytes)) => self.session.handle_input(&bytes, Instant::now()),
                Wake::Read(Read::Finished) => self.session.handle_finished(),
                Wake::Read(Read::Lost(why)) => return Err(why),
                Wake::Timeout => self.session.handle_timeout(Instant::now()),
                Wake::Ask(Some(ask)) => self.solicit(ask),
                Wake::Ask(None) => self
                    .session
                    .end(close::NORMAL, "the module's instance was removed".into()),
                Wake::Retired => {
                    let plane = retired.map(|m| m.plane.id.clone()).unwrap_or_default();
                    self.session.end(
                        close::NORMAL,
                        format!("control plane {plane:?} was taken out of force"),
                    );
                }
            }
        }
    }

    fn solicit(&mut self, ask: Ask) {
        let left = ask.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return; // stale: the round already counted the miss
        }
        let mut s = (*ask.solicitation).clone();
        s.budget_ms = left.as_millis() as u32;
        if self.session.solicit(&s) {
            self.pending = Some(ask);
        }
    }

    /// Checks a registration against the configuration; accepts it or
    /// refuses it with the reason.
    fn register(&mut self, spec: ModuleSpec) {
        let control = self.control;
        let Some(configured) = control.custom(&spec.id) else {
            let why = format!("module {:?} is not configured on this supervisor", spec.id);
            return self.session.refuse(close::AUTH, why);
        };
        if configured.kind != spec.kind {
            let why = format!(
                "module {:?} is configured as {}, but registered as {}",
                spec.id, configured.kind, spec.kind
            );
            return self.session.refuse(close::AUTH, why);
        }
        let plane = control
            .planes()
            .iter()
            .find(|p| {
                p.modules(spec.kind)
                    .contains(&ModuleRef::Custom(spec.id.clone()))
            })
            .cloned();
        let Some(plane) = plane else {
            let why = format!("module {:?} is not used by any control plane", spec.id);
            return self.session.refuse(close::AUTH, why);
        };
        let limits = configured.limits.unwrap_or(control.module_limits());
        let known = control.known_stats(&spec.id, &plane.id);
        let (instance, inbox) = ModuleInstance::new(Instance::new(
            spec,
            plane.clone(),
            false,
            true,
            limits,
            known,
        ));
        let instance = Arc::new(instance);
        // One live instance per module and plane: it replaces an earlier one.
        control.register(instance.clone());
        self.session.accept(Registered {
            protocol: PROTOCOL_VERSION,
            control_plane: plane.id.clone(),
            customer: plane.customer.clone(),
        });
        info!(control_plane = %plane.id, kind = %instance.kind(), "module registered");
        self.instance = Some((instance, inbox));
    }

    /// Records how the session ended and takes the instance out of rounds.
    fn finish(&mut self, end: &Result<Close, String>) {
        let Some((m, _)) = self.instance.take() else {
            return;
        };
        self.control.unregister(&m);
        let fault = match end {
            Err(why) => Some(format!("disconnected: {why}")),
            Ok(c) if c.code == close::PROTOCOL || c.code == close::LIMIT => {
                m.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                Some(c.reason.clone())
            }
            Ok(c) if !c.by_peer && c.code != close::NORMAL => Some(c.reason.clone()),
            Ok(_) => None,
        };
        if let Some(f) = fault {
            m.stats.faults.fetch_add(1, Ordering::Relaxed);
            m.stats.last_fault.store(Some(Arc::new(f.clone())));
            if let Some(ask) = self.pending.take() {
                ask.deliver(Err(Fault::Disconnected(f)), &m.stats);
            }
        }
    }
}
