use super::*;

const V: TypeId = TypeId(1); // vehicle
const G: TypeId = TypeId(2); // garage

fn names() -> HashMap<TypeId, String> {
    [(V, "vehicle".to_owned()), (G, "garage".to_owned())].into()
}

fn req(index: usize, source: i64, action: LinkAction, target: i64) -> Request {
    Request {
        index,
        source: RecordId(source),
        action,
        target_type: G,
        target: Ok(RecordId(target)),
    }
}

fn link(source: i64, target: i64) -> Link {
    Link::new(RecordId(source), V, RecordId(target), G)
}

#[test]
fn links_and_unlinks_are_idempotent() {
    let mut state = State::default();
    state.add_stored(RecordId(1), V, RecordId(100), G);
    let p = plan(
        vec![
            req(0, 1, LinkAction::Link, 100),   // exists: no-op
            req(0, 1, LinkAction::Link, 101),   // new
            req(1, 2, LinkAction::Unlink, 100), // missing: no-op
            req(1, 2, LinkAction::Link, 101),   // new
        ],
        V,
        state,
        10,
        &names(),
    );
    assert_eq!(p.adds, vec![link(1, 101), link(2, 101)]);
    assert!(p.removes.is_empty());
    assert!(p.errors.is_empty());
    assert_eq!((p.linked, p.unlinked), (2, 0));
}

#[test]
fn only_the_net_difference_is_written() {
    let mut state = State::default();
    state.add_stored(RecordId(100), G, RecordId(1), V); // stored from the garage's side
    let p = plan(
        vec![
            req(0, 1, LinkAction::Unlink, 100),
            req(0, 1, LinkAction::Link, 100),
            req(1, 2, LinkAction::Link, 100),
            req(1, 2, LinkAction::Unlink, 100),
            req(2, 3, LinkAction::Unlink, 100),
        ],
        V,
        state,
        10,
        &names(),
    );
    assert!(p.adds.is_empty(), "{:?}", p.adds);
    assert!(p.removes.is_empty(), "{:?}", p.removes);
    assert_eq!((p.linked, p.unlinked), (2, 2));
}

#[test]
fn the_cap_holds_on_the_source_end_across_the_batch() {
    let mut state = State::default();
    for g in 100..108 {
        state.add_stored(RecordId(1), V, RecordId(g), G);
    }
    let requests = (108..112).map(|g| req(3, 1, LinkAction::Link, g)).collect();
    let p = plan(requests, V, state, 10, &names());
    assert_eq!(p.adds, vec![link(1, 108), link(1, 109)]);
    assert_eq!(p.errors.len(), 2);
    let (index, r) = &p.errors[0];
    assert_eq!(*index, 3);
    assert_eq!(r.code, RejectionCode::TooManyAssociations);
    assert!(
        r.message
            .contains("record 1 already holds 10 linked garage"),
        "{}",
        r.message
    );
}

#[test]
fn the_cap_holds_on_the_target_end() {
    let mut state = State::default();
    for v in 1..=9 {
        state.add_stored(RecordId(v), V, RecordId(100), G);
    }
    let p = plan(
        vec![
            req(0, 10, LinkAction::Link, 100),
            req(1, 11, LinkAction::Link, 100),
        ],
        V,
        state,
        10,
        &names(),
    );
    assert_eq!(p.adds, vec![link(10, 100)]);
    assert_eq!(p.errors.len(), 1);
    assert!(
        p.errors[0]
            .1
            .message
            .contains("garage record 100 already holds 10 linked vehicle")
    );
}

#[test]
fn an_unlink_frees_a_place_under_the_cap() {
    let mut state = State::default();
    for g in 100..110 {
        state.add_stored(RecordId(1), V, RecordId(g), G);
    }
    let p = plan(
        vec![
            req(0, 1, LinkAction::Unlink, 100),
            req(0, 1, LinkAction::Link, 110),
        ],
        V,
        state,
        10,
        &names(),
    );
    assert_eq!(p.adds, vec![link(1, 110)]);
    assert_eq!(p.removes, vec![link(1, 100)]);
    assert!(p.errors.is_empty());
}

#[test]
fn unresolved_targets_are_reported_in_order() {
    let p = plan(
        vec![Request {
            index: 4,
            source: RecordId(1),
            action: LinkAction::Link,
            target_type: G,
            target: Err(Rejection {
                code: RejectionCode::AssociatedRecordNotFound,
                message: "gone".into(),
            }),
        }],
        V,
        State::default(),
        10,
        &names(),
    );
    assert_eq!(p.errors[0].0, 4);
    assert_eq!(p.errors[0].1.code, RejectionCode::AssociatedRecordNotFound);
}
