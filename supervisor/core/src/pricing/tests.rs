use vcp_common::module::Kind;

use super::*;

fn sheet() -> PriceSheet {
    PriceSheet::from_toml(PRICES_EXAMPLE).expect("example parses")
}

fn contract(payer: Payer, cost_benefit: Option<CostBenefit>) -> Contract {
    Contract {
        control_plane: "acme".into(),
        module: "scaler".into(),
        payer,
        cost_benefit,
    }
}

fn param(parameter: &str, requests: u64, bytes: u64) -> ParamUsage {
    ParamUsage {
        parameter: parameter.into(),
        requests,
        bytes,
        ..Default::default()
    }
}

fn usage() -> ModuleUsage {
    ModuleUsage {
        module: "scaler".into(),
        control_plane: "acme".into(),
        customer: "acme".into(),
        vendor: Some("predictive".into()),
        kind: Kind::Autoscaling,
        per_parameter: vec![
            ParamUsage {
                late: 3,
                rejected: 1,
                clipped: 2,
                ..param("instances", 12, 1500)
            },
            param("(undeclared)", 2, 250),
        ],
        cpu_ns: 2_500_000,
    }
}

/// `(kind, debit, amount)` of each charge, for compact assertions.
fn summary(charges: &[Charge]) -> Vec<(&str, &str, i64)> {
    charges
        .iter()
        .map(|c| (c.kind.as_str(), c.debit.as_str(), c.amount))
        .collect()
}

#[test]
fn example_price_sheet_parses() {
    let s = sheet();
    assert_eq!(s.period, BillingPeriod::Hour);
    assert_eq!(s.default_request_fee, 50);
    assert_eq!((s.response_fee_per_kb, s.compute_fee_per_ms), (20, 100));
    assert_eq!(s.request_fees.len(), 2);
    assert_eq!(
        s.resources,
        ResourcePrices {
            cpu_core_hour: 30_000,
            memory_gib_hour: 4_000,
            gpu_hour: 1_500_000,
            nic_gb: 10_000,
        }
    );
    assert_eq!(
        PriceSheet::from_toml("").expect("empty"),
        PriceSheet::default()
    );
    let day = PriceSheet::from_toml("period = \"month\"").expect("month");
    assert_eq!(day.period.as_str(), "month");
}

#[test]
fn price_sheet_rejects_unknown_fields_and_bad_values() {
    let bad = [
        "colour = 1",
        "period = \"week\"",
        "[resources]\ncpu_hour = 1",
        "[[request_fees]]\nkind = \"autoscaling\"\nfee = 1\nextra = 2",
        "[[request_fees]]\nkind = \"teleport\"\nfee = 1",
        "default_request_fee = 1.5",
        "default_request_fee = -1",
        "[resources]\nnic_gb = -5",
        "[[request_fees]]\nkind = \"spread\"\nfee = -1",
        "[[request_fees]]\nkind = \"spread\"\nparameter = \"\"\nfee = 1",
        "[[request_fees]]\nkind = \"spread\"\nfee = 1\n[[request_fees]]\nkind = \"spread\"\nfee = 2",
    ];
    for text in bad {
        assert!(PriceSheet::from_toml(text).is_err(), "accepted: {text}");
    }
    let err = PriceSheet::from_toml("\n\ncolour = 1").expect_err("unknown");
    assert!(err.to_string().contains("line 3"), "{err}");
}

#[test]
fn request_fee_lookup_is_most_specific_first() {
    let s = sheet();
    assert_eq!(s.request_fee(Kind::Autoscaling, "instances"), 100);
    assert_eq!(s.request_fee(Kind::Autoscaling, "other"), 50);
    assert_eq!(s.request_fee(Kind::LoadBalancing, "lb.weight"), 80);
    assert_eq!(s.request_fee(Kind::Spread, "placement"), 50);
}

#[test]
fn example_contracts_parse_and_bad_ones_are_rejected() {
    let set = ContractSet::from_toml(CONTRACTS_EXAMPLE).expect("example parses");
    let acme = set.find("acme", "predictive-scaler").expect("acme");
    assert_eq!(acme.payer, Payer::Split(0.3));
    assert_eq!(
        acme.cost_benefit,
        Some(CostBenefit {
            share: 0.5,
            baseline: Baseline::PriorPeriodCost(12_000_000),
            penalty: Some(1_000_000),
        })
    );
    let globex = set.find("globex", "smart-lb").expect("globex");
    assert_eq!(globex.payer, Payer::Vendor);
    let cb = globex.cost_benefit.expect("cost benefit");
    assert_eq!((cb.baseline, cb.penalty), (Baseline::DefaultModule, None));
    assert_eq!(cb.baseline_cost(Some(7)), Some(7));
    assert_eq!(cb.baseline_cost(None), None);
    assert!(set.find("acme", "smart-lb").is_none());

    let head = "[[contract]]\ncontrol_plane = \"a\"\nmodule = \"m\"\n";
    let ok = ContractSet::from_toml(head).expect("defaults");
    assert_eq!(ok.contracts[0].payer, Payer::Customer);
    let bad = [
        "payer = { split = 1.5 }",
        "payer = { split = -0.1 }",
        "payer = { split = nan }",
        "payer = \"operator\"",
        "payer = { split = 0.5, extra = 1 }",
        "colour = 1",
        "cost_benefit = { share = 2.0, baseline = \"default_module\" }",
        "cost_benefit = { share = 0.5, baseline = \"default_module\", bonus = 1 }",
        "cost_benefit = { share = 0.5, baseline = { prior_period_cost = -1 } }",
        "cost_benefit = { share = 0.5, baseline = \"last_year\" }",
        "cost_benefit = { share = 0.5, baseline = \"default_module\", penalty = -1 }",
    ];
    for line in bad {
        let text = format!("{head}{line}");
        assert!(ContractSet::from_toml(&text).is_err(), "accepted: {line}");
    }
    assert!(ContractSet::from_toml("[[agreement]]").is_err());
    assert!(
        ContractSet::from_toml(&format!("{head}{head}")).is_err(),
        "duplicate"
    );
}

#[test]
fn customer_pays_billable_fees_and_the_vendor_its_faults_without_contract() {
    let charges = request_charges(&sheet(), None, &usage(), "2025-06-01T13", 1_000);
    // Of 12 × 100, 3 late + 1 rejected + 2 clipped are the vendor's; 2 × 50
    // (default fee); 1750 B × 20 µ/kB = 35; 2.5 ms × 100 = 250.
    assert_eq!(
        summary(&charges),
        [
            ("request_fee", "customer:acme", 600),
            ("request_fee", "vendor:predictive", 600),
            ("request_fee", "customer:acme", 100),
            ("response_bytes", "customer:acme", 35),
            ("compute", "customer:acme", 250),
        ]
    );
    let c = &charges[0];
    assert_eq!((c.credit.as_str(), c.at_ms), (OPERATOR_ACCOUNT, 1_000));
    assert_eq!((c.quantity, c.unit_price), (6.0, 100));
    assert_eq!(
        (c.module.as_str(), c.control_plane.as_str()),
        ("scaler", "acme")
    );
    assert!(
        c.description
            .contains("6 of 12 at 100 µ (3 late, 1 rejected, 2 clipped"),
        "{}",
        c.description
    );
    assert_eq!((charges[1].quantity, charges[1].unit_price), (6.0, 100));
    assert_eq!((charges[3].quantity, charges[3].unit_price), (1.75, 20));
    assert_eq!((charges[4].quantity, charges[4].unit_price), (2.5, 100));

    // Over-quota bytes are the vendor's too.
    let flood = ModuleUsage {
        per_parameter: vec![ParamUsage {
            rejected: 10_000,
            over_quota: 9_000,
            fault_bytes: 300_000,
            ..param("instances", 11_000, 330_000)
        }],
        cpu_ns: 0,
        ..usage()
    };
    assert_eq!(
        summary(&request_charges(&sheet(), None, &flood, "p", 0)),
        [
            ("request_fee", "customer:acme", 100_000),
            ("request_fee", "vendor:predictive", 1_000_000),
            ("response_bytes", "customer:acme", 600),
            ("response_bytes", "vendor:predictive", 6_000),
        ]
    );

    // Without a vendor a contract's split does not apply.
    let default_module = ModuleUsage {
        vendor: None,
        ..usage()
    };
    let c = contract(Payer::Vendor, None);
    let charges = request_charges(&sheet(), Some(&c), &default_module, "p", 0);
    assert!(charges.iter().all(|c| c.debit == "customer:acme"));
}

#[test]
fn split_payer_parts_sum_exactly() {
    let c = contract(Payer::Split(0.3), None);
    let charges = request_charges(&sheet(), Some(&c), &usage(), "p", 0);
    assert_eq!(
        summary(&charges),
        [
            ("request_fee", "customer:acme", 180),
            ("request_fee", "vendor:predictive", 420),
            ("request_fee", "vendor:predictive", 600),
            ("request_fee", "customer:acme", 30),
            ("request_fee", "vendor:predictive", 70),
            ("response_bytes", "customer:acme", 11), // 10.5 → 11: the customer's rounding unit
            ("response_bytes", "vendor:predictive", 24),
            ("compute", "customer:acme", 75),
            ("compute", "vendor:predictive", 175),
        ]
    );
    assert!(charges[0].description.ends_with("customer pays 30%"));
    assert!((charges[1].quantity - 4.2).abs() < 1e-9);

    let third = contract(Payer::Split(1.0 / 3.0), None);
    let u = ModuleUsage {
        per_parameter: vec![param("instances", 1, 0)],
        cpu_ns: 0,
        ..usage()
    };
    let charges = request_charges(&sheet(), Some(&third), &u, "p", 0);
    assert_eq!(
        summary(&charges),
        [
            ("request_fee", "customer:acme", 34),
            ("request_fee", "vendor:predictive", 66)
        ]
    );

    let vendor = contract(Payer::Vendor, None);
    let charges = request_charges(&sheet(), Some(&vendor), &u, "p", 0);
    assert_eq!(
        summary(&charges),
        [("request_fee", "vendor:predictive", 100)]
    );
}

#[test]
fn byte_and_compute_fees_round_half_to_even() {
    let u = |bytes, cpu_ns| ModuleUsage {
        per_parameter: vec![param("instances", 0, bytes)],
        cpu_ns,
        ..usage()
    };
    let amounts = |u: &ModuleUsage| -> Vec<i64> {
        request_charges(&sheet(), None, u, "p", 0)
            .iter()
            .map(|c| c.amount)
            .collect()
    };
    // 1775 B × 20 / 1000 = 35.5 → 36; 1825 B → 36.5 → 36; 5 ns × 100 / 10⁶ → 0.
    assert_eq!(amounts(&u(1775, 5)), [36]);
    assert_eq!(amounts(&u(1825, 0)), [36]);
    // 15_000 ns × 100 µ/ms = 1.5 → 2; 25_000 ns → 2.5 → 2; 35_000 → 3.5 → 4.
    assert_eq!(amounts(&u(0, 15_000)), [2]);
    assert_eq!(amounts(&u(0, 25_000)), [2]);
    assert_eq!(amounts(&u(0, 35_000)), [4]);
    assert!(
        amounts(&u(0, 0)).is_empty(),
        "zero amounts produce no charge"
    );
}

#[test]
fn resource_charges_and_cost() {
    let usage = ResourceUsage {
        core_seconds: 7200.0,
        gib_seconds: 36_000.0,
        gpu_seconds: 1800.0,
        nic_bytes: 2_500_000_000,
    };
    let charges = resource_charge(&sheet(), "acme", "web", usage, "p", 5);
    assert_eq!(
        charges.iter().map(|c| c.amount).collect::<Vec<_>>(),
        [60_000, 40_000, 750_000, 25_000]
    );
    assert!(charges
        .iter()
        .all(|c| c.debit == "customer:acme" && c.credit == OPERATOR_ACCOUNT));
    assert_eq!((charges[0].quantity, charges[0].unit_price), (2.0, 30_000));
    assert_eq!(resource_cost(&sheet(), &usage), 875_000);

    // 0.06 core-s × 30_000 / 3600 = 0.5 → 0 (even): no charge; 0.18 → 1.5 → 2.
    let small = |core_seconds| ResourceUsage {
        core_seconds,
        ..Default::default()
    };
    assert!(resource_charge(&sheet(), "acme", "web", small(0.06), "p", 0).is_empty());
    assert_eq!(resource_cost(&sheet(), &small(0.18)), 2);
    assert_eq!(resource_cost(&sheet(), &small(-5.0)), 0);
    assert_eq!(resource_cost(&sheet(), &small(f64::NAN)), 0);
}

fn parties() -> Parties {
    Parties {
        customer: "acme".into(),
        vendor: "predictive".into(),
        service_set: "web".into(),
    }
}

fn sharing(share: f64, penalty: Option<i64>) -> Contract {
    contract(
        Payer::Customer,
        Some(CostBenefit {
            share,
            baseline: Baseline::PriorPeriodCost(12_000_000),
            penalty,
        }),
    )
}

#[test]
fn cost_benefit_pays_the_savings_share_when_goals_held() {
    let c = sharing(0.5, Some(1_000_000));
    let charges = cost_benefit(&c, 12_000_000, 9_000_000, true, "p", 7, &parties());
    assert_eq!(
        summary(&charges),
        [("savings_share", "customer:acme", 1_500_000)]
    );
    let s = &charges[0];
    assert_eq!((s.credit.as_str(), s.at_ms), ("vendor:predictive", 7));
    assert_eq!((s.quantity, s.unit_price), (0.5, 3_000_000));
    // Rounding half to even: 3 × 0.5 = 1.5 → 2; 5 × 0.5 = 2.5 → 2; 100 / 3 → 33.
    let amount =
        |c: &Contract, saving| cost_benefit(c, saving, 0, true, "p", 0, &parties())[0].amount;
    assert_eq!((amount(&c, 3), amount(&c, 5)), (2, 2));
    assert_eq!(amount(&sharing(1.0 / 3.0, None), 100), 33);
}

#[test]
fn cost_benefit_without_goals_or_reduction() {
    let with_penalty = sharing(0.5, Some(1_000_000));
    let charges = cost_benefit(
        &with_penalty,
        12_000_000,
        9_000_000,
        false,
        "p",
        0,
        &parties(),
    );
    assert_eq!(
        summary(&charges),
        [("penalty", "vendor:predictive", 1_000_000)]
    );
    assert_eq!(charges[0].credit, "customer:acme");

    let no_penalty = sharing(0.5, None);
    assert!(cost_benefit(
        &no_penalty,
        12_000_000,
        9_000_000,
        false,
        "p",
        0,
        &parties()
    )
    .is_empty());
    assert!(cost_benefit(&sharing(0.5, Some(0)), 1, 0, false, "p", 0, &parties()).is_empty());
    // No reduction: nothing, even with goals met.
    for actual in [12_000_000, 15_000_000] {
        assert!(
            cost_benefit(&with_penalty, 12_000_000, actual, true, "p", 0, &parties()).is_empty()
        );
    }
    // A tiny saving whose share rounds to 0, and no cost-benefit clause.
    assert!(cost_benefit(&no_penalty, 1, 0, true, "p", 0, &parties()).is_empty());
    let plain = contract(Payer::Customer, None);
    assert!(cost_benefit(&plain, 10, 0, true, "p", 0, &parties()).is_empty());
}

#[test]
fn goals_held_needs_every_window() {
    assert!(goals_held(12, 12));
    assert!(!goals_held(11, 12));
    assert!(!goals_held(0, 0));
}

#[test]
fn idempotency_keys_are_deterministic_and_distinct() {
    let c = contract(
        Payer::Split(0.5),
        Some(CostBenefit {
            share: 0.5,
            baseline: Baseline::DefaultModule,
            penalty: Some(1),
        }),
    );
    let all = |period: &str, u: &ModuleUsage| {
        let mut v = request_charges(&sheet(), Some(&c), u, period, 0);
        let r = ResourceUsage {
            core_seconds: 3600.0,
            gib_seconds: 3600.0,
            gpu_seconds: 3600.0,
            nic_bytes: 1 << 30,
        };
        v.extend(resource_charge(&sheet(), &u.customer, "web", r, period, 0));
        v.extend(cost_benefit(&c, 10, 0, true, period, 0, &parties()));
        v.extend(cost_benefit(&c, 10, 0, false, period, 0, &parties()));
        v.into_iter().map(|c| c.key).collect::<Vec<_>>()
    };
    let keys = all("2025-06-01T13", &usage());
    assert_eq!(keys.len(), 15);
    assert!(keys.contains(
        &"2025-06-01T13:request_fee:acme:scaler:acme:autoscaling:instances:vendor-faults".into()
    ));
    assert_eq!(
        keys,
        all("2025-06-01T13", &usage()),
        "recomputing gives the same keys"
    );
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        keys.len(),
        "keys within a period are distinct"
    );
    assert_eq!(
        keys[0],
        "2025-06-01T13:request_fee:acme:scaler:acme:autoscaling:instances:customer"
    );

    let other_period = all("2025-06-01T14", &usage());
    assert!(keys.iter().all(|k| !other_period.contains(k)));
    let other_module = ModuleUsage {
        module: "scaler-2".into(),
        ..usage()
    };
    let other = request_charges(&sheet(), Some(&c), &other_module, "2025-06-01T13", 0);
    assert!(other.iter().all(|o| !keys.contains(&o.key)));
    let other_plane = ModuleUsage {
        control_plane: "acme-2".into(),
        ..usage()
    };
    let other = request_charges(&sheet(), Some(&c), &other_plane, "2025-06-01T13", 0);
    assert!(other.iter().all(|o| !keys.contains(&o.key)));
    // Separators inside components are escaped: no collisions by shifting.
    assert_ne!(
        idempotency_key(&["a:b", "c"]),
        idempotency_key(&["a", "b:c"])
    );
    assert_eq!(idempotency_key(&["50%", "x:y"]), "50%25:x%3Ay");
}
