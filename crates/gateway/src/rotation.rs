//! Webhook secrets rotate without a restart. Stripe lets an endpoint's secret be rolled with
//! the old one kept valid for a while; the operator adds the new secret to the mounted file,
//! and later removes the old one. The gateway re-reads the files (the account endpoint's and
//! the Connect endpoint's) when one changes and swaps the verifiers at once; a file that is
//! empty, unreadable or mid-write is refused and counted, and the secrets in force stay.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use cardstream_policy::watch_file;
use cardstream_telemetry::CancellationToken;
use prometheus::IntCounterVec;

use crate::{SecretArgs, Verifiers};

/// Follows `args.webhook_secrets_file` and `args.connect_webhook_secrets_file`, those set.
pub(crate) fn watch(
    args: SecretArgs,
    tolerance: Duration,
    verifiers: Arc<ArcSwap<Verifiers>>,
    reloads: IntCounterVec,
    shutdown: CancellationToken,
) {
    let files: Vec<PathBuf> = [
        args.webhook_secrets_file.clone(),
        args.connect_webhook_secrets_file.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    for path in files {
        let (args, verifiers, reloads) = (args.clone(), verifiers.clone(), reloads.clone());
        // The task runs until `shutdown`; nothing waits for it. Either file's change reloads
        // both, so the verifiers in force always come from one reading of the two.
        let _task = watch_file(
            path.clone(),
            args.secrets_reload_interval,
            shutdown.clone(),
            move || {
                let loaded = args.load().and_then(|secrets| {
                    Ok((Verifiers::new(&secrets, tolerance.as_secs())?, secrets))
                });
                match loaded {
                    Ok((new, secrets)) => {
                        verifiers.store(Arc::new(new));
                        reloads.with_label_values(&["ok"]).inc();
                        tracing::info!(
                            path = %path.display(),
                            secrets = secrets.account.len(),
                            connect_secrets = secrets.connect.len(),
                            "webhook secrets reloaded"
                        );
                    }
                    Err(err) => {
                        reloads.with_label_values(&["invalid"]).inc();
                        // The error names the file, never a secret.
                        tracing::error!(path = %path.display(), error = %err, "cannot use the changed webhook secrets file; keeping the secrets in force");
                    }
                }
            },
        );
    }
}
