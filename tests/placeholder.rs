//! Workspace integration tests live in this folder.
#[test]
fn workspace_tests_are_collected() {
    assert_eq!(1 + 1, 2);
}
