//! Webhook secrets rotate without a restart. Stripe lets an endpoint's secret be rolled with
//! the old one kept valid for a while; the operator adds the new secret to the mounted file,
//! and later removes the old one. The gateway re-reads the file when it changes and swaps the
//! verifier at once; a file that is empty, unreadable or mid-write is refused and counted, and
//! the secrets in force stay.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use cardstream_policy::watch_file;
use cardstream_stripe::Verifier;
use cardstream_telemetry::CancellationToken;
use prometheus::IntCounterVec;

use crate::SecretArgs;

/// Follows `args.webhook_secrets_file`, if there is one.
pub(crate) fn watch(
    args: SecretArgs,
    tolerance: Duration,
    verifier: Arc<ArcSwap<Verifier>>,
    reloads: IntCounterVec,
    shutdown: CancellationToken,
) {
    let Some(path) = args.webhook_secrets_file.clone() else {
        return;
    };
    // The task runs until `shutdown`; nothing waits for it.
    let _task = watch_file(
        path.clone(),
        args.secrets_reload_interval,
        shutdown,
        move || {
            let loaded = args.load().and_then(|secrets| {
                Ok((Verifier::new(&secrets, tolerance.as_secs())?, secrets.len()))
            });
            match loaded {
                Ok((new, count)) => {
                    verifier.store(Arc::new(new));
                    reloads.with_label_values(&["ok"]).inc();
                    tracing::info!(path = %path.display(), secrets = count, "webhook secrets reloaded");
                }
                Err(err) => {
                    reloads.with_label_values(&["invalid"]).inc();
                    // The error names the file, never a secret.
                    tracing::error!(error = %err, "cannot use the changed webhook secrets file; keeping the secrets in force");
                }
            }
        },
    );
}
