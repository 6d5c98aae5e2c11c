use proptest::prelude::*;
use vcp_common::module::Kind;

use super::*;

proptest! {
    #[test]
    fn split_parts_sum_exactly_and_are_never_negative(
        amount in 0..=i64::MAX,
        ppm in any::<i64>(),
    ) {
        let (customer, vendor) = split_customer_share(amount, ppm);
        prop_assert!(customer >= 0 && vendor >= 0);
        prop_assert_eq!(i128::from(customer) + i128::from(vendor), i128::from(amount));
    }

    #[test]
    fn split_of_a_payer_share_sums_exactly(amount in 0..=i64::MAX, share in 0.0f64..=1.0) {
        let (customer, vendor) = split_customer_share(amount, Payer::Split(share).customer_ppm());
        prop_assert!(customer >= 0 && vendor >= 0);
        prop_assert_eq!(customer.checked_add(vendor), Some(amount));
    }

    #[test]
    fn split_request_charges_sum_to_the_unsplit_fees(
        share in 0.0f64..=1.0,
        requests in 0u64..1_000_000,
        bytes in 0u64..1_000_000_000,
        cpu_ns in 0u64..1_000_000_000_000,
    ) {
        let sheet = PriceSheet::from_toml(PRICES_EXAMPLE).expect("example parses");
        let usage = ModuleUsage {
            module: "m".into(),
            control_plane: "p".into(),
            customer: "c".into(),
            vendor: Some("v".into()),
            kind: Kind::Autoscaling,
            per_parameter: vec![ParamUsage {
                parameter: "instances".into(),
                requests,
                bytes,
                ..Default::default()
            }],
            cpu_ns,
        };
        let contract = Contract {
            control_plane: "p".into(),
            module: "m".into(),
            payer: Payer::Split(share),
            cost_benefit: None,
        };
        let split = request_charges(&sheet, Some(&contract), &usage, "p1", 0);
        let whole = request_charges(&sheet, None, &usage, "p1", 0);
        prop_assert!(split.iter().all(|c| c.amount > 0));
        for kind in ["request_fee", "response_bytes", "compute"] {
            let sum = |v: &[Charge]| v.iter().filter(|c| c.kind == kind).map(|c| c.amount).sum::<i64>();
            prop_assert_eq!(sum(&split), sum(&whole));
        }
    }

    #[test]
    fn half_even_division_is_within_half_a_unit(num in any::<i64>(), den in 1i64..=i64::MAX) {
        let (n, d) = (i128::from(num), i128::from(den));
        let q = div_round_half_even(n, d);
        let err = (q * d - n).abs();
        prop_assert!(2 * err <= d);
        if 2 * err == d {
            prop_assert_eq!(q % 2, 0);
        }
    }
}
