//! How often a component reports itself to the admin console's health page, and the duration
//! parser such intervals share: a timer of period zero cannot tick (tokio panics on one), so a
//! zero is refused where it is read, with the reason.

use std::time::Duration;

/// How often a process reports to the health page.
#[derive(clap::Args, Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusArgs {
    /// How often this process writes its version, readiness and counts for the admin
    /// console's health page (a row per process, a few per minute): a process silent for
    /// three of these shows as silent.
    #[arg(
        long = "status-interval",
        env = "CARDSTREAM_STATUS_INTERVAL",
        default_value = "10s",
        value_parser = non_zero_duration
    )]
    pub every: Duration,
}

impl Default for StatusArgs {
    fn default() -> Self {
        StatusArgs {
            every: Duration::from_secs(10),
        }
    }
}

/// A duration that is not zero (a timer of period zero cannot tick).
pub fn non_zero_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be longer than 0 (e.g. 1s)".into()),
        Ok(d) => Ok(d),
        Err(err) => Err(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Component {
        #[command(flatten)]
        status: StatusArgs,
    }

    #[test]
    fn a_zero_duration_is_refused() {
        assert!(non_zero_duration("0s").is_err());
        assert!(non_zero_duration("soon").is_err());
        assert_eq!(non_zero_duration("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn a_zero_status_interval_is_refused_with_the_flag() {
        let Err(err) = Component::try_parse_from(["component", "--status-interval", "0s"]) else {
            panic!("--status-interval 0s was accepted")
        };
        let text = err.to_string();
        assert!(
            text.contains("--status-interval") && text.contains("longer than 0"),
            "{text}"
        );
        let every = Component::try_parse_from(["component", "--status-interval", "300ms"])
            .map(|c| c.status.every)
            .ok();
        assert_eq!(every, Some(Duration::from_millis(300)));
    }
}
