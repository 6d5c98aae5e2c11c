use super::*;

fn set(s: &str) -> Target {
    Target::ServiceSet(s.into())
}

#[test]
fn target_hash_distinguishes_field_boundaries() {
    let a = Target::Member {
        service_set: "ab".into(),
        host: "c".into(),
    };
    let b = Target::Member {
        service_set: "a".into(),
        host: "bc".into(),
    };
    assert_ne!(target_hash(&a), target_hash(&b));
    assert_eq!(target_hash(&a), target_hash(&a.clone()));
}

#[test]
fn equal_targets_share_an_id_and_order_follows_the_hash() {
    let mut n = Interner::default();
    let names: Vec<String> = (0..50).map(|i| format!("s{i}")).collect();
    let ids: Vec<u32> = names.iter().map(|s| n.intern(set(s))).collect();
    assert_eq!(n.intern(set("s7")), ids[7]);
    assert_eq!(n.find(&set("s7")), Some(ids[7]));
    assert_eq!(n.find(&set("nope")), None);
    // New targets merge into the order.
    n.intern(set("late"));
    n.intern(set("later"));
    let order: Vec<u64> = n
        .ordered()
        .to_vec()
        .iter()
        .map(|&i| target_hash(n.target(i)))
        .collect();
    assert_eq!(order.len(), 52);
    assert!(order.windows(2).all(|w| w[0] <= w[1]));
    // This round's copy is taken once, then cloned.
    assert_eq!(n.take(ids[3]), set("s3"));
    assert_eq!(n.take(ids[3]), set("s3"));
}

#[test]
fn hints_are_checked_and_relearned() {
    let mut n = Interner::default();
    let (a, b) = (n.intern(set("a")), n.intern(set("b")));
    assert_eq!(n.find_at(0, 0, &set("a")), Some(a));
    // The slot's answer changed order: the stale guess is not trusted.
    assert_eq!(n.find_at(0, 0, &set("b")), Some(b));
    assert_eq!(n.hints[0][0], b);
    assert_eq!(n.find_at(3, 1, &set("nope")), None);
    assert_eq!(n.hints[3][1], NONE);
}

fn scope_of(sets: &[&str]) -> Arc<Scope> {
    let defs = sets
        .iter()
        .map(|s| crate::plane::ServiceSetDef {
            id: s.to_string(),
            customer: "c".into(),
            members: vec![],
            instances: crate::plane::Instances {
                min: 1,
                max: 4,
                initial: 1,
            },
            goals: vec![],
            instance: None,
        })
        .collect();
    Arc::new(Scope::new(defs, false))
}

#[test]
fn a_new_scope_is_asked_anew() {
    let mut n = Interner::default();
    n.begin();
    let a = scope_of(&["x"]);
    let bit = n.scope_bit(&a);
    let x = n.intern(set("x"));
    assert!(n.covered(x, &a, bit));
    // The plane is swapped for one without "x"; the old scope is gone.
    drop(a);
    n.begin();
    let b = scope_of(&["y"]);
    let bit = n.scope_bit(&b);
    let x = n.find(&set("x")).unwrap_or_else(|| n.intern(set("x")));
    assert!(!n.covered(x, &b, bit));
    assert!(!n.covered(x, &b, bit));
}

#[test]
fn more_than_64_scopes_reuse_bits_of_scopes_not_asked_lately() {
    let mut n = Interner::default();
    n.begin();
    let x = n.intern(set("x"));
    // 64 scopes covering "x", still held elsewhere (e.g. by records of
    // modules that ran in them) but no longer asked.
    let old: Vec<_> = (0..SCOPES).map(|_| scope_of(&["x"])).collect();
    for s in &old {
        let bit = n.scope_bit(s);
        assert!(bit.is_some());
        assert!(n.covered(x, s, bit));
    }
    n.begin();
    let busy = scope_of(&["y"]);
    // Asked last round: no bit to spare yet.
    assert_eq!(n.scope_bit(&busy), None);
    n.begin();
    let bit = n.scope_bit(&busy);
    assert!(bit.is_some());
    // The reused bit does not answer with the old scope's coverage.
    assert!(!n.covered(x, &busy, bit));
    assert!(!n.covered(x, &busy, bit));
    // 64 scopes asked every round keep their bits; a 65th goes uncached.
    let mut live: Vec<_> = (1..SCOPES).map(|_| scope_of(&["x"])).collect();
    live.push(busy);
    let extra = scope_of(&["x"]);
    for _ in 0..3 {
        n.begin();
        let bits: Vec<_> = live.iter().map(|s| n.scope_bit(s)).collect();
        assert!(bits.iter().all(Option::is_some));
        assert_eq!(n.scope_bit(&extra), None);
        assert!(n.covered(x, &extra, None));
        for (s, b) in live.iter().zip(bits) {
            assert_eq!(n.covered(x, s, b), s.covers(&set("x")));
        }
    }
    drop(old);
}

#[test]
fn colliding_lookup_hashes_chain() {
    let mut n = Interner::default();
    let (a, b) = (set("a"), set("b"));
    // Force both under one lookup hash.
    let h = n.lookup_hash(&a);
    let ia = n.intern(a.clone());
    let ib = n.targets.len() as u32;
    n.by_hash.insert(h, ib);
    n.info.push(Info {
        order: target_hash(&b),
        next: ia,
        asked: 0,
        covered: 0,
    });
    n.targets.push(b.clone());
    n.owned.push(None);
    assert_eq!(n.find_hashed(&a, h), Some(ia));
    assert_eq!(n.find_hashed(&b, h), Some(ib));
    assert_eq!(n.find_hashed(&set("c"), h), None);
}
