//! PLACEHOLDER MEDIATION — precedence to the default module. Until the
//! mediators land, competing requests for one (target, parameter) resolve
//! to the operator's default module's request if there is one, otherwise
//! to the request of the module registered first.

use std::collections::BTreeMap;

use vcp_common::module::Target;

use crate::modules::registry::Instances;
use crate::settings::Decision;
use crate::solicit::round::Request;

pub fn mediate(round: u64, requests: &[Request], modules: &Instances) -> Vec<Decision> {
    let mut groups: BTreeMap<(&Target, &str), Vec<&Request>> = BTreeMap::new();
    for r in requests {
        groups
            .entry((&r.target, r.parameter.as_str()))
            .or_default()
            .push(r);
    }
    groups
        .into_values()
        .filter_map(|group| {
            let winner = group
                .iter()
                .min_by_key(|r| (!modules[r.slot].is_default, r.slot))?;
            let m = &modules[winner.slot];
            Some(Decision {
                round,
                target: winner.target.clone(),
                parameter: winner.parameter.clone(),
                value: winner.value,
                module: m.id().to_owned(),
                control_plane: m.plane.id.clone(),
                contenders: group.len(),
            })
        })
        .collect()
}
