//! The ledger end to end: writer, reader, statements and their renderings.

use super::statement::money;
use super::*;

/// 2026-11-26T10:00:00Z.
const T0: i64 = 1_795_687_200_000;

fn charge(key: &str, at_ms: i64, debit: &str, credit: &str, amount: i64) -> Charge {
    Charge {
        key: key.into(),
        at_ms,
        debit: debit.into(),
        credit: credit.into(),
        amount,
        module: "autoscaler".into(),
        control_plane: "default".into(),
        kind: "solicitation".into(),
        description: "scale decision".into(),
        quantity: 1.0,
        unit_price: amount,
    }
}

fn acme(key: &str, at_ms: i64, amount: i64) -> Charge {
    charge(
        key,
        at_ms,
        "customer:acme",
        "vendor:predictive-labs",
        amount,
    )
}

#[tokio::test]
async fn same_key_twice_charges_once_even_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (ledger, reader) = Ledger::open(dir.path()).unwrap();
        let batch = vec![acme("a", T0, 5), acme("b", T0, 7), acme("a", T0, 5)];
        assert_eq!(ledger.record_durable(batch.clone()).await.unwrap(), 2);
        assert_eq!(ledger.record_durable(batch).await.unwrap(), 0);
        ledger
            .record(vec![acme("b", T0, 7), acme("c", T0, 1)])
            .unwrap();
        assert_eq!(ledger.flush().await.unwrap(), 3);
        let t = reader.totals().unwrap();
        assert_eq!((t.entries, t.total_debits, t.total_credits), (3, 13, 13));
    }
    let (ledger, reader) = Ledger::open(dir.path()).unwrap();
    assert_eq!(
        ledger.record_durable(vec![acme("a", T0, 5)]).await.unwrap(),
        0
    );
    assert_eq!(ledger.flush().await.unwrap(), 3, "counted from the file");
    assert_eq!(reader.account_balance("customer:acme").unwrap(), 13);
    assert_eq!(
        reader.account_balance("vendor:predictive-labs").unwrap(),
        -13
    );
    assert!(reader.has_key("c").unwrap() && !reader.has_key("d").unwrap());
}

#[tokio::test]
async fn debits_equal_credits_and_reopen_shows_the_same_totals() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = ["customer:acme", "customer:globex", "vendor:x", "operator"];
    let mut charges = Vec::new();
    for i in 0..1000i64 {
        let d = accounts[(i % 4) as usize];
        let c = accounts[((i + 1 + i % 3) % 4) as usize];
        charges.push(charge(&format!("k{i}"), T0 + i, d, c, 1 + i * 1_000_003));
    }
    let before = {
        let (ledger, reader) = Ledger::open(dir.path()).unwrap();
        for chunk in charges.chunks(64) {
            ledger.record(chunk.to_vec()).unwrap();
        }
        assert_eq!(ledger.flush().await.unwrap(), 1000);
        let t = reader.totals().unwrap();
        assert_eq!(t.total_debits, t.total_credits);
        assert_eq!(
            t.total_debits,
            charges.iter().map(|c| c.amount).sum::<i64>()
        );
        let balances: i64 = (accounts.iter())
            .map(|a| reader.account_balance(a).unwrap())
            .sum();
        assert_eq!(balances, 0, "every micro-unit paid is received");
        t
    };
    // A reader alone (as the CLI opens it), then the writer again.
    assert_eq!(
        LedgerReader::open(dir.path()).unwrap().totals().unwrap(),
        before
    );
    let (_ledger, reader) = Ledger::open(dir.path()).unwrap();
    assert_eq!(reader.totals().unwrap(), before);
    assert_eq!(reader.accounts().unwrap().len(), 4);
}

#[tokio::test]
async fn invalid_charges_are_refused_and_zero_ones_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, reader) = Ledger::open(dir.path()).unwrap();
    let cases = [
        (acme("neg", T0, -5), "amount -5 micro-units is negative"),
        (acme("", T0, 5), "idempotency key is empty"),
        (
            charge("self", T0, "operator", "operator", 5),
            "same account \"operator\"",
        ),
        (
            Charge {
                quantity: f64::NAN,
                ..acme("nan", T0, 5)
            },
            "quantity NaN",
        ),
    ];
    for (bad, want) in cases {
        let key = format!("{:?}", bad.key);
        let err = ledger
            .record(vec![acme("fine", T0, 1), bad])
            .unwrap_err()
            .to_string();
        assert!(err.contains(want) && err.contains(&key), "{err}");
    }
    assert_eq!(
        ledger
            .record_durable(vec![acme("zero", T0, 0), acme("one", T0, 1)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        ledger
            .record_durable(vec![acme("zero", T0, 0)])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        reader.totals().unwrap().entries,
        1,
        "the refused batches left nothing"
    );
    assert!(LedgerReader::open(&dir.path().join("none")).is_err());
}

async fn small_statement() -> Statement {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, reader) = Ledger::open(dir.path()).unwrap();
    let mut refund = charge("r", T0 + 61_000, "operator", "customer:acme", 250_000);
    refund.module = "placement".into();
    refund.kind = "refund".into();
    refund.description = "credit, \"goodwill\"".into();
    refund.quantity = 0.5;
    refund.unit_price = 500_000;
    ledger
        .record_durable(vec![
            acme("a", T0 + 1_500, 12_345_678),
            refund,
            acme("b", T0 + 3_600_000, 1), // the next hour
            acme("c", T0 - 1, 1),         // the previous hour
        ])
        .await
        .unwrap();
    let hour = Period::parse("2026-11-26T10").unwrap();
    let s = reader.statement("customer:acme", &hour).unwrap();
    let day = reader
        .statement("customer:acme", &Period::parse("2026-11-26").unwrap())
        .unwrap();
    assert_eq!(day.lines.len(), 4);
    assert_eq!(day.total, 12_345_678 - 250_000 + 2);
    let all = reader.statement("customer:acme", &Period::All).unwrap();
    assert_eq!(all.total, reader.account_balance("customer:acme").unwrap());
    s
}

#[tokio::test]
async fn statement_lines_sum_to_the_total() {
    let s = small_statement().await;
    assert_eq!(s.lines.len(), 2);
    assert_eq!(s.lines.iter().map(|l| l.amount).sum::<i64>(), s.total);
    assert_eq!(s.total, 12_095_678);
    assert_eq!(
        s.subtotals_by_module,
        vec![
            ("autoscaler".to_string(), 12_345_678),
            ("placement".to_string(), -250_000)
        ]
    );
    assert_eq!(s.lines[1].counterparty, "operator");
    assert_eq!(money(-1), "-0.000001");
    assert_eq!(money(i64::MIN), "-9223372036854.775808");
}

#[tokio::test]
async fn renders_a_table() {
    let s = small_statement().await;
    let want = "\
Statement for customer:acme, period 2026-11-26T10

TIME                      MODULE      CONTROL PLANE  KIND          DESCRIPTION         QUANTITY  UNIT PRICE     AMOUNT  COUNTERPARTY
2026-11-26T10:00:01.500Z  autoscaler  default        solicitation  scale decision             1   12.345678  12.345678  vendor:predictive-labs
2026-11-26T10:01:01.000Z  placement   default        refund        credit, \"goodwill\"       0.5    0.500000  -0.250000  operator

Subtotals by module:
  autoscaler    12.345678
  placement     -0.250000

Subtotals by kind:
  refund        -0.250000
  solicitation  12.345678

  TOTAL         12.095678
";
    assert_eq!(render(&s, Format::Table), want);
}

#[tokio::test]
async fn renders_json() {
    let s = small_statement().await;
    let want = r#"{
  "account": "customer:acme",
  "period": "2026-11-26T10",
  "lines": [
    {
      "at_ms": 1795687201500,
      "time": "2026-11-26T10:00:01.500Z",
      "module": "autoscaler",
      "control_plane": "default",
      "kind": "solicitation",
      "description": "scale decision",
      "quantity": 1.0,
      "unit_price": 12345678,
      "amount": 12345678,
      "counterparty": "vendor:predictive-labs"
    },
    {
      "at_ms": 1795687261000,
      "time": "2026-11-26T10:01:01.000Z",
      "module": "placement",
      "control_plane": "default",
      "kind": "refund",
      "description": "credit, \"goodwill\"",
      "quantity": 0.5,
      "unit_price": 500000,
      "amount": -250000,
      "counterparty": "operator"
    }
  ],
  "line_count": 2,
  "next": null,
  "subtotals": {
    "by_module": [
      {
        "module": "autoscaler",
        "amount": 12345678
      },
      {
        "module": "placement",
        "amount": -250000
      }
    ],
    "by_kind": [
      {
        "kind": "refund",
        "amount": -250000
      },
      {
        "kind": "solicitation",
        "amount": 12345678
      }
    ]
  },
  "total": 12095678
}"#;
    assert_eq!(render(&s, Format::Json), want);
}

#[tokio::test]
async fn renders_csv_with_quoting() {
    let s = small_statement().await;
    let want = "\
account,period,time,module,control_plane,kind,description,quantity,unit_price,amount,counterparty
customer:acme,2026-11-26T10,2026-11-26T10:00:01.500Z,autoscaler,default,solicitation,scale decision,1,12.345678,12.345678,vendor:predictive-labs
customer:acme,2026-11-26T10,2026-11-26T10:01:01.000Z,placement,default,refund,\"credit, \"\"goodwill\"\"\",0.5,0.500000,-0.250000,operator
";
    assert_eq!(render(&s, Format::Csv), want);
}

#[tokio::test]
async fn statements_read_a_page_at_a_time_with_the_whole_totals() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, reader) = Ledger::open(dir.path()).unwrap();
    // Five charges, two at the same time: the page order is time then id.
    let times = [T0 + 5, T0 + 1, T0 + 3, T0 + 3, T0 + 9];
    let charges = times
        .iter()
        .enumerate()
        .map(|(i, &t)| acme(&format!("k{i}"), t, 100 + i as i64))
        .collect();
    ledger.record_durable(charges).await.unwrap();
    let hour = Period::parse("2026-11-26T10").unwrap();
    let whole = reader.statement("customer:acme", &hour).unwrap();
    let (mut after, mut seen) = (None, Vec::new());
    loop {
        let page = reader
            .statement_page("customer:acme", &hour, after, 2)
            .unwrap();
        assert!(page.lines.len() <= 2);
        assert_eq!((page.total, page.line_count), (whole.total, 5));
        assert_eq!(page.subtotals_by_kind, whole.subtotals_by_kind);
        assert_eq!(page.subtotals_by_module, whole.subtotals_by_module);
        seen.extend(page.lines);
        match page.next {
            Some(next) => after = Some(next.parse().unwrap()),
            None => break,
        }
    }
    assert_eq!(seen, whole.lines, "every line once, in order");
    assert!("12".parse::<super::Cursor>().is_err());
    assert!("a-b".parse::<super::Cursor>().is_err());
    // The chart: one point per span; one span sums all.
    let points = reader.cost_points("customer:acme", &hour, 1000).unwrap();
    assert_eq!(points.len(), 4, "a point per distinct time: {points:?}");
    assert_eq!(points.last().unwrap().1, whole.total);
    let one = reader.cost_points("customer:acme", &hour, 1).unwrap();
    assert_eq!(one, [(T0 + 9, whole.total)]);
    assert!(reader
        .cost_points("customer:none", &hour, 10)
        .unwrap()
        .is_empty());
    let empty = reader
        .statement_page("customer:none", &hour, None, 10)
        .unwrap();
    assert_eq!((empty.line_count, empty.total, empty.next), (0, 0, None));
}

#[test]
fn an_empty_statement_renders() {
    let s = reader::build_statement("operator", "2026-11", Vec::new()).unwrap();
    assert_eq!(s.total, 0);
    assert!(render(&s, Format::Table).contains("(no charges)"));
    assert_eq!(render(&s, Format::Csv).lines().count(), 1);
}

#[tokio::test]
async fn a_failed_commit_is_reported_by_the_next_flush() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, reader) = Ledger::open(dir.path()).unwrap();
    // Another connection installs a trigger that fails one key's insert.
    rusqlite::Connection::open(dir.path().join(STORE_FILE))
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON entries WHEN NEW.key = 'boom'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    ledger
        .record(vec![acme("boom", T0, 1), acme("x", T0, 1)])
        .unwrap();
    let err = ledger.flush().await.unwrap_err().to_string();
    assert!(
        err.starts_with("2 recorded charge(s) were not committed") && err.contains("injected"),
        "{err}"
    );
    assert_eq!(ledger.flush().await.unwrap(), 0, "reported once");
    let err = ledger.record_durable(vec![acme("boom", T0, 1)]).await;
    assert!(matches!(err, Err(LedgerError::Store(_))), "{err:?}");
    assert_eq!(
        ledger.record_durable(vec![acme("x", T0, 1)]).await.unwrap(),
        1
    );
    assert_eq!(reader.totals().unwrap().entries, 1);
}
