//! Conversions between the `v1` messages and the domain types: domain to
//! wire borrows and never fails; wire to domain takes ownership and fails
//! on what the types cannot rule out (an invalid resource id).

use std::borrow::Cow;
use std::sync::Arc;

use super::*;
use crate::module as m;
use crate::resource::ResourceId;
use crate::view as v;

fn s(x: &str) -> Str<'_> {
    Cow::Borrowed(x)
}

fn own(x: Str<'_>) -> String {
    x.into_owned()
}

fn resource(x: Str<'_>) -> Result<ResourceId, String> {
    ResourceId::new(x.into_owned()).map_err(|e| e.to_string())
}

impl From<m::Kind> for Kind {
    fn from(k: m::Kind) -> Self {
        match k {
            m::Kind::Provisioning => Kind::Provisioning,
            m::Kind::Allocation => Kind::Allocation,
            m::Kind::Autoscaling => Kind::Autoscaling,
            m::Kind::Spread => Kind::Spread,
            m::Kind::LoadBalancing => Kind::LoadBalancing,
            m::Kind::TrafficDetection => Kind::TrafficDetection,
            m::Kind::TrafficMitigation => Kind::TrafficMitigation,
        }
    }
}

impl From<Kind> for m::Kind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Provisioning => m::Kind::Provisioning,
            Kind::Allocation => m::Kind::Allocation,
            Kind::Autoscaling => m::Kind::Autoscaling,
            Kind::Spread => m::Kind::Spread,
            Kind::LoadBalancing => m::Kind::LoadBalancing,
            Kind::TrafficDetection => m::Kind::TrafficDetection,
            Kind::TrafficMitigation => m::Kind::TrafficMitigation,
        }
    }
}

fn cmp(c: m::Cmp) -> Cmp {
    match c {
        m::Cmp::Below => Cmp::Below,
        m::Cmp::Above => Cmp::Above,
    }
}

fn objective(o: m::Objective) -> Objective {
    match o {
        m::Objective::Minimise => Objective::Minimise,
        m::Objective::Maximise => Objective::Maximise,
        m::Objective::Track => Objective::Track,
    }
}

fn condition(c: &m::Condition) -> Condition<'_> {
    Condition {
        metric: s(&c.metric),
        cmp: cmp(c.cmp),
        value: c.value,
    }
}

fn goal(g: &m::Goal) -> Goal<'_> {
    Goal {
        metric: s(&g.metric),
        objective: objective(g.objective),
        target: g.target,
        conditions: g.conditions.iter().map(condition).collect(),
    }
}

impl<'a> From<&'a m::ModuleSpec> for ModuleSpec<'a> {
    fn from(x: &'a m::ModuleSpec) -> Self {
        ModuleSpec {
            id: s(&x.id),
            kind: x.kind.into(),
            vendor: s(&x.vendor),
            version: s(&x.version),
            inputs: x
                .inputs
                .iter()
                .map(|i| SensorSelector {
                    metric: s(&i.metric),
                    resource_prefix: i.resource_prefix.as_deref().map(s),
                })
                .collect(),
            outputs: x.outputs.iter().map(|o| s(o)).collect(),
            goals: x.goals.iter().map(goal).collect(),
            deadline_ms: x.deadline_ms,
            custom_sensors: x
                .custom_sensors
                .iter()
                .map(|c| CustomSensor {
                    metric: s(&c.metric),
                    unit: s(&c.unit),
                    help: s(&c.help),
                })
                .collect(),
        }
    }
}

impl<'a> From<&'a m::Registered> for Registered<'a> {
    fn from(x: &'a m::Registered) -> Self {
        Registered {
            protocol: x.protocol,
            control_plane: s(&x.control_plane),
            customer: s(&x.customer),
        }
    }
}

impl<'a> From<&'a m::Target> for Target<'a> {
    fn from(x: &'a m::Target) -> Self {
        match x {
            m::Target::ServiceSet(id) => Target::ServiceSet(s(id)),
            m::Target::Member { service_set, host } => Target::Member {
                service_set: s(service_set),
                host: s(host),
            },
            m::Target::Resource { host, resource } => Target::Resource {
                host: s(host),
                resource: s(resource),
            },
        }
    }
}

impl<'a> From<&'a m::Proposal> for Proposal<'a> {
    fn from(p: &'a m::Proposal) -> Self {
        Proposal {
            target: (&p.target).into(),
            parameter: s(&p.parameter),
            value: p.value,
        }
    }
}

impl<'a> From<&'a m::Response> for Response<'a> {
    fn from(x: &'a m::Response) -> Self {
        Response {
            round: x.round,
            proposals: x.proposals.iter().map(Proposal::from).collect(),
        }
    }
}

impl<'a> From<&'a m::Solicitation> for Solicitation<'a> {
    fn from(x: &'a m::Solicitation) -> Self {
        let view = &x.view;
        Solicitation {
            round: x.round,
            kind: x.kind.into(),
            budget_ms: x.budget_ms,
            view: SensorView {
                at_ms: view.at_ms,
                hosts: view
                    .hosts
                    .iter()
                    .map(|h| HostReadings {
                        host: s(&h.host),
                        readings: h
                            .readings
                            .iter()
                            .map(|r| Reading {
                                resource: s(&r.resource),
                                metric: s(&r.metric),
                                value: r.value,
                                at_ms: r.at_ms,
                            })
                            .collect(),
                    })
                    .collect(),
                service_sets: view
                    .service_sets
                    .iter()
                    .map(|set| ServiceSetState {
                        id: s(&set.id),
                        customer: s(&set.customer),
                        members: set
                            .members
                            .iter()
                            .map(|mm| Member {
                                host: s(&mm.host),
                                resource: mm.resource.as_deref().map(s),
                            })
                            .collect(),
                        instances: set.instances,
                        min_instances: set.min_instances,
                        max_instances: set.max_instances,
                        goals: set.goals.iter().map(goal).collect(),
                    })
                    .collect(),
                settings: view
                    .settings
                    .iter()
                    .map(|st| Setting {
                        target: (&st.target).into(),
                        parameter: s(&st.parameter),
                        value: st.value,
                    })
                    .collect(),
            },
        }
    }
}

fn condition_in(c: Condition<'_>) -> m::Condition {
    m::Condition {
        metric: own(c.metric),
        cmp: match c.cmp {
            Cmp::Below => m::Cmp::Below,
            Cmp::Above => m::Cmp::Above,
        },
        value: c.value,
    }
}

fn goal_in(g: Goal<'_>) -> m::Goal {
    m::Goal {
        metric: own(g.metric),
        objective: match g.objective {
            Objective::Minimise => m::Objective::Minimise,
            Objective::Maximise => m::Objective::Maximise,
            Objective::Track => m::Objective::Track,
        },
        target: g.target,
        conditions: g.conditions.into_iter().map(condition_in).collect(),
    }
}

impl From<ModuleSpec<'_>> for m::ModuleSpec {
    fn from(x: ModuleSpec<'_>) -> Self {
        m::ModuleSpec {
            id: own(x.id),
            kind: x.kind.into(),
            vendor: own(x.vendor),
            version: own(x.version),
            inputs: x
                .inputs
                .into_iter()
                .map(|i| m::SensorSelector {
                    metric: own(i.metric),
                    resource_prefix: i.resource_prefix.map(own),
                })
                .collect(),
            outputs: x.outputs.into_iter().map(own).collect(),
            goals: x.goals.into_iter().map(goal_in).collect(),
            deadline_ms: x.deadline_ms,
            custom_sensors: x
                .custom_sensors
                .into_iter()
                .map(|c| m::CustomSensor {
                    metric: own(c.metric),
                    unit: own(c.unit),
                    help: own(c.help),
                })
                .collect(),
        }
    }
}

impl From<Registered<'_>> for m::Registered {
    fn from(x: Registered<'_>) -> Self {
        m::Registered {
            protocol: x.protocol,
            control_plane: own(x.control_plane),
            customer: own(x.customer),
        }
    }
}

impl TryFrom<Target<'_>> for m::Target {
    type Error = String;
    fn try_from(x: Target<'_>) -> Result<Self, String> {
        Ok(match x {
            Target::ServiceSet(id) => m::Target::ServiceSet(own(id)),
            Target::Member { service_set, host } => m::Target::Member {
                service_set: own(service_set),
                host: own(host),
            },
            Target::Resource { host, resource: r } => m::Target::Resource {
                host: own(host),
                resource: resource(r)?,
            },
        })
    }
}

impl TryFrom<Response<'_>> for m::Response {
    type Error = String;
    fn try_from(x: Response<'_>) -> Result<Self, String> {
        Ok(m::Response {
            round: x.round,
            proposals: x
                .proposals
                .into_iter()
                .map(|p| {
                    Ok(m::Proposal {
                        target: p.target.try_into()?,
                        parameter: own(p.parameter),
                        value: p.value,
                    })
                })
                .collect::<Result<_, String>>()?,
        })
    }
}

impl TryFrom<Solicitation<'_>> for m::Solicitation {
    type Error = String;
    fn try_from(x: Solicitation<'_>) -> Result<Self, String> {
        let view = x.view;
        Ok(m::Solicitation {
            round: x.round,
            kind: x.kind.into(),
            budget_ms: x.budget_ms,
            view: v::SensorView {
                at_ms: view.at_ms,
                hosts: view
                    .hosts
                    .into_iter()
                    .map(|h| {
                        Arc::new(v::HostReadings {
                            host: own(h.host),
                            readings: h
                                .readings
                                .into_iter()
                                .map(|r| v::Reading {
                                    resource: own(r.resource),
                                    metric: own(r.metric),
                                    value: r.value,
                                    at_ms: r.at_ms,
                                })
                                .collect(),
                        })
                    })
                    .collect(),
                service_sets: view
                    .service_sets
                    .into_iter()
                    .map(|set| {
                        Ok(v::ServiceSetState {
                            id: own(set.id),
                            customer: own(set.customer),
                            members: set
                                .members
                                .into_iter()
                                .map(|mm| {
                                    Ok(v::Member {
                                        host: own(mm.host),
                                        resource: mm.resource.map(resource).transpose()?,
                                    })
                                })
                                .collect::<Result<_, String>>()?,
                            instances: set.instances,
                            min_instances: set.min_instances,
                            max_instances: set.max_instances,
                            goals: set.goals.into_iter().map(goal_in).collect(),
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()?
                    .into(),
                settings: view
                    .settings
                    .into_iter()
                    .map(|st| {
                        Ok(v::Setting {
                            target: st.target.try_into()?,
                            parameter: own(st.parameter),
                            value: st.value,
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()?
                    .into(),
            },
        })
    }
}
