//! What must not compile: non-`ShmSafe` values in shared primitives and boxes, derives on
//! enums, on structs without a fixed layout, with lifetime parameters, or with reference,
//! pointer or non-`ShmSafe` fields, types with drop glue, pthread-backend or unchecked
//! types in the safe `ShmRef` placement functions, and mapped guards that are sent to another
//! thread, outlived by a borrow, or given to a condvar wait.
//!
//! The `pass` cases make trybuild build (not just check) every case, which the drop-glue
//! check needs: `ShmSafe::ASSERT_NO_DROP` is evaluated when a generic constructor is
//! instantiated, after type checking.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/*.rs");
}
