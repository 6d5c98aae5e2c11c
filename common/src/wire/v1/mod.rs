//! `vcp-module/1`: the messages between a remote module and the
//! supervisor, frozen (see the rules in [`super`]). Strings borrow from the
//! domain value when encoding and are owned when decoded.

mod convert;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

type Str<'a> = Cow<'a, str>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Provisioning,
    Allocation,
    Autoscaling,
    Spread,
    LoadBalancing,
    TrafficDetection,
    TrafficMitigation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorSelector<'a> {
    pub metric: Str<'a>,
    pub resource_prefix: Option<Str<'a>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Cmp {
    Below,
    Above,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition<'a> {
    pub metric: Str<'a>,
    pub cmp: Cmp,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Objective {
    Minimise,
    Maximise,
    Track,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal<'a> {
    pub metric: Str<'a>,
    pub objective: Objective,
    pub target: Option<f64>,
    pub conditions: Vec<Condition<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomSensor<'a> {
    pub metric: Str<'a>,
    pub unit: Str<'a>,
    pub help: Str<'a>,
}

/// Body of `Register` (type 7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleSpec<'a> {
    pub id: Str<'a>,
    pub kind: Kind,
    pub vendor: Str<'a>,
    pub version: Str<'a>,
    pub inputs: Vec<SensorSelector<'a>>,
    pub outputs: Vec<Str<'a>>,
    pub goals: Vec<Goal<'a>>,
    pub deadline_ms: u32,
    pub custom_sensors: Vec<CustomSensor<'a>>,
}

/// Body of `Registered` (type 8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered<'a> {
    pub protocol: u16,
    pub control_plane: Str<'a>,
    pub customer: Str<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Target<'a> {
    ServiceSet(Str<'a>),
    Member { service_set: Str<'a>, host: Str<'a> },
    Resource { host: Str<'a>, resource: Str<'a> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal<'a> {
    pub target: Target<'a>,
    pub parameter: Str<'a>,
    pub value: f64,
}

/// Body of `Respond` (type 10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response<'a> {
    pub round: u64,
    pub proposals: Vec<Proposal<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading<'a> {
    pub resource: Str<'a>,
    pub metric: Str<'a>,
    pub value: f64,
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostReadings<'a> {
    pub host: Str<'a>,
    pub readings: Vec<Reading<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member<'a> {
    pub host: Str<'a>,
    pub resource: Option<Str<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceSetState<'a> {
    pub id: Str<'a>,
    pub customer: Str<'a>,
    pub members: Vec<Member<'a>>,
    pub instances: u32,
    pub min_instances: u32,
    pub max_instances: u32,
    pub goals: Vec<Goal<'a>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Setting<'a> {
    pub target: Target<'a>,
    pub parameter: Str<'a>,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorView<'a> {
    pub at_ms: i64,
    pub hosts: Vec<HostReadings<'a>>,
    pub service_sets: Vec<ServiceSetState<'a>>,
    pub settings: Vec<Setting<'a>>,
}

/// Body of `Solicit` (type 9).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Solicitation<'a> {
    pub round: u64,
    pub kind: Kind,
    pub budget_ms: u32,
    pub view: SensorView<'a>,
}
