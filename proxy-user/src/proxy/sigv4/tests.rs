use super::held::Budget;

#[test]
fn the_budget_refuses_past_its_bound_and_gets_bytes_back_on_drop() {
    let budget = Budget::new(100);
    let a = budget.reserve(60).unwrap();
    assert!(budget.reserve(41).is_none(), "60 + 41 > 100");
    let b = budget.reserve(40).unwrap();
    assert_eq!(budget.held(), 100);
    assert!(budget.reserve(1).is_none());
    drop(a);
    assert_eq!(budget.held(), 40);
    assert!(budget.reserve(usize::MAX).is_none(), "no overflow");
    drop(b);
    assert_eq!(budget.held(), 0);
}
