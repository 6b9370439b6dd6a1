use super::*;
use proptest::prelude::*;

const DAY: i64 = 86_400;
/// 2026-11-23 12:00:00 UTC.
const NOW: i64 = 1_795_435_200;

fn usd(x: u64) -> Nanos {
    x * NANOS_PER_USD
}

#[test]
fn budgets_parse() {
    assert_eq!(
        "5/day".parse::<Budget>().unwrap(),
        Budget {
            limit: usd(5),
            period: Period::Day
        }
    );
    assert_eq!(
        "$50/month".parse::<Budget>().unwrap(),
        Budget {
            limit: usd(50),
            period: Period::Month
        }
    );
    assert_eq!(
        "100".parse::<Budget>().unwrap(),
        Budget {
            limit: usd(100),
            period: Period::Total
        }
    );
    assert_eq!("0.25/day".parse::<Budget>().unwrap().limit, 250_000_000);
    for bad in ["", "x", "5/week", "5/total", "-1", "1.0000000001", "1e3"] {
        assert!(bad.parse::<Budget>().is_err(), "{bad}");
    }
    assert_eq!("$5/day".parse::<Budget>().unwrap().to_string(), "$5/day");
    assert_eq!(format_usd(1_500_000_000), "1.5");
}

#[test]
fn windows_are_calendar_aligned() {
    let (start, next) = Period::Day.window(NOW);
    assert_eq!(start % DAY, 0);
    assert_eq!(next, Some(start + DAY));
    // 2026-11-23 → November: 2026-11-01 .. 2026-12-01.
    let (start, next) = Period::Month.window(NOW);
    assert_eq!(start, 1_793_491_200);
    assert_eq!(next, Some(1_796_083_200));
    // December rolls into January.
    let (_, next) = Period::Month.window(1_796_083_200 + 10);
    assert_eq!(next, Some(1_798_761_600));
    assert_eq!(Period::Total.window(NOW), (0, None));
}

#[test]
fn a_request_that_does_not_fit_is_refused_with_time_to_reset() {
    let mut key = Account::new(
        Some(Budget {
            limit: usd(1),
            period: Period::Day,
        }),
        None,
        None,
    );
    let hold = Hold {
        cost: 400_000_000,
        tokens: 10,
    };
    reserve(&mut [&mut key], hold, NOW).unwrap();
    reserve(&mut [&mut key], hold, NOW).unwrap();
    let err = reserve(&mut [&mut key], hold, NOW).unwrap_err();
    assert_eq!(
        err,
        Refusal::Budget {
            account: 0,
            retry_after: Some(12 * 3600)
        }
    );
    // Settling below the estimate frees room.
    settle(&mut [&mut key], hold, 100_000_000, 5, NOW);
    reserve(&mut [&mut key], hold, NOW).unwrap();
    assert_eq!(key.spent(NOW), 100_000_000);
    assert_eq!(key.held(), 800_000_000);
}

#[test]
fn every_account_must_fit_and_none_changes_on_refusal() {
    let mut key = Account::new(
        Some(Budget {
            limit: usd(10),
            period: Period::Day,
        }),
        None,
        None,
    );
    let mut team = Account::new(
        Some(Budget {
            limit: usd(1),
            period: Period::Month,
        }),
        None,
        None,
    );
    let hold = Hold {
        cost: usd(2),
        tokens: 1,
    };
    let err = reserve(&mut [&mut key, &mut team], hold, NOW).unwrap_err();
    assert!(matches!(err, Refusal::Budget { account: 1, .. }));
    assert_eq!(key.held(), 0, "the key was not charged for a refused request");
}

#[test]
fn daily_spend_resets_at_midnight_but_lifetime_does_not() {
    let mut key = Account::new(
        Some(Budget {
            limit: usd(1),
            period: Period::Day,
        }),
        None,
        None,
    );
    let hold = Hold {
        cost: usd(1),
        tokens: 1,
    };
    reserve(&mut [&mut key], hold, NOW).unwrap();
    settle(&mut [&mut key], hold, usd(1), 1, NOW);
    assert!(reserve(&mut [&mut key], hold, NOW).is_err());
    reserve(&mut [&mut key], hold, NOW + DAY).unwrap();
    let mut life = Account::new(
        Some(Budget {
            limit: usd(1),
            period: Period::Total,
        }),
        None,
        None,
    );
    reserve(&mut [&mut life], hold, NOW).unwrap();
    settle(&mut [&mut life], hold, usd(1), 1, NOW);
    let err = reserve(&mut [&mut life], hold, NOW + 400 * DAY).unwrap_err();
    assert_eq!(
        err,
        Refusal::Budget {
            account: 0,
            retry_after: None
        }
    );
}

#[test]
fn rate_limits_count_per_minute() {
    let mut key = Account::new(None, Some(2), Some(100));
    let small = Hold { cost: 0, tokens: 10 };
    reserve(&mut [&mut key], small, NOW).unwrap();
    reserve(&mut [&mut key], small, NOW + 1).unwrap();
    assert_eq!(
        reserve(&mut [&mut key], small, NOW + 2).unwrap_err(),
        Refusal::Rpm {
            account: 0,
            retry_after: 58
        }
    );
    reserve(&mut [&mut key], small, NOW + 60).unwrap();
    let big = Hold { cost: 0, tokens: 95 };
    assert!(matches!(
        reserve(&mut [&mut key], big, NOW + 61).unwrap_err(),
        Refusal::Tpm { .. }
    ));
    // Settling to the actual (smaller) token count frees tokens in the minute.
    settle(&mut [&mut key], small, 0, 1, NOW + 61);
    reserve(&mut [&mut key], Hold { cost: 0, tokens: 95 }, NOW + 62).unwrap();
}

#[derive(Debug, Clone)]
enum Op {
    Reserve { cost: Nanos },
    Settle { which: usize, actual: Nanos },
    Release { which: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..300_000_000).prop_map(|cost| Op::Reserve { cost }),
        (any::<usize>(), 0u64..300_000_000).prop_map(|(which, actual)| Op::Settle { which, actual }),
        any::<usize>().prop_map(|which| Op::Release { which }),
    ]
}

proptest! {
    /// Whatever the interleaving of reservations and settlements, committed money (spent + held)
    /// never passes the limit by more than what settlements exceeded their own holds by, and holds
    /// always equal the sum of outstanding reservations.
    #[test]
    fn reservations_never_overspend(ops in proptest::collection::vec(op(), 1..200), limit in 0u64..2_000_000_000) {
        let mut key = Account::new(Some(Budget { limit, period: Period::Total }), None, None);
        let mut team = Account::new(Some(Budget { limit: limit / 2 + 1, period: Period::Total }), None, None);
        let mut open: Vec<Hold> = Vec::new();
        let mut overshoot: Nanos = 0;
        for op in ops {
            match op {
                Op::Reserve { cost } => {
                    let hold = Hold { cost, tokens: 1 };
                    if reserve(&mut [&mut key, &mut team], hold, NOW).is_ok() {
                        open.push(hold);
                    }
                }
                Op::Settle { which, actual } if !open.is_empty() => {
                    let hold = open.swap_remove(which % open.len());
                    overshoot += actual.saturating_sub(hold.cost);
                    settle(&mut [&mut key, &mut team], hold, actual, 1, NOW);
                }
                Op::Release { which } if !open.is_empty() => {
                    let hold = open.swap_remove(which % open.len());
                    release(&mut [&mut key, &mut team], hold, NOW);
                }
                _ => {}
            }
            let held: Nanos = open.iter().map(|h| h.cost).sum();
            prop_assert_eq!(key.held(), held);
            prop_assert_eq!(team.held(), held);
            prop_assert!(key.spent(NOW) + key.held() <= limit + overshoot);
            prop_assert!(team.spent(NOW) + team.held() <= limit / 2 + 1 + overshoot);
        }
    }

    #[test]
    fn usd_text_round_trips(n in 0u64..10_000_000_000_000) {
        prop_assert_eq!(parse_usd(&format_usd(n)), Some(n));
    }
}
