//! CPU time of processes, from /proc, to show where a run's cores went.

use std::time::Instant;

/// Clock ticks per second of /proc's counters (USER_HZ), 100 on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU seconds (user + system) a process has used so far; 0 when unknown.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may hold spaces; the fields that matter follow its closing parenthesis.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    (ticks(11) + ticks(12)) / TICKS_PER_SECOND
}

/// Cores used by each named process between `start` and `finish`.
#[derive(Debug)]
pub(crate) struct CpuMeter {
    pids: Vec<(&'static str, u32, f64)>,
    postgres: Option<f64>,
    started: Instant,
}

/// CPU seconds of all processes named `postgres` now running. Backends that exited since the
/// start are missed, so this is a lower bound.
fn postgres_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(cpu_seconds)
        .sum()
}

impl CpuMeter {
    pub(crate) fn start(pids: &[(&'static str, Option<u32>)]) -> Self {
        CpuMeter {
            pids: pids
                .iter()
                .filter_map(|(name, pid)| pid.map(|p| (*name, p, cpu_seconds(p))))
                .collect(),
            postgres: None,
            started: Instant::now(),
        }
    }

    /// Also measures every process named `postgres` (the server and its backends), summed.
    pub(crate) fn with_postgres(mut self) -> Self {
        self.postgres = Some(postgres_seconds());
        self
    }

    /// `"gateway 0.9, broker 0.7, load generator 0.4 cores"`.
    pub(crate) fn finish(&self) -> String {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let mut parts: Vec<String> = self
            .pids
            .iter()
            .map(|(name, pid, before)| format!("{name} {:.2}", (cpu_seconds(*pid) - before) / wall))
            .collect();
        if let Some(before) = self.postgres {
            parts.push(format!(
                "postgres {:.2}",
                (postgres_seconds() - before) / wall
            ));
        }
        format!("cores used: {}", parts.join(", "))
    }
}
