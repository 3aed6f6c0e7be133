//! What every model file shares: the preemption bound.

/// Default preemption bound when `LOOM_MAX_PREEMPTIONS` is not set.
///
/// Measured for the whole suite on 2 cores (see `docs/design.md`): every seeded bug we
/// tried (a locker leaving the slow path without `CONTENDED`, a `Relaxed` acquiring
/// compare-exchange, `if` instead of `while` around a wait, a notification sent before the
/// change it announces) is caught at bound 2 or 3 already; 3 keeps `cargo test --workspace`
/// (debug) fast on 2 cores. CI and developers may raise it with `LOOM_MAX_PREEMPTIONS`.
pub const PREEMPTIONS: usize = 3;

/// Runs `f` under loom with [`PREEMPTIONS`] unless `LOOM_MAX_PREEMPTIONS` says otherwise.
pub fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(PREEMPTIONS);
    }
    builder.check(f);
}

/// [`model`] for a heavy model: preemption bound `bound`, whatever `LOOM_MAX_PREEMPTIONS`
/// says, unless `SHMSYNC_LOOM_DEEP` is set (then as [`model`]).
#[allow(dead_code)]
pub fn model_with_bound(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    if std::env::var_os("SHMSYNC_LOOM_DEEP").is_some() {
        return model(f);
    }
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(bound);
    builder.check(f);
}
