//! The printed table.

use std::time::Duration;

use crate::ms;

#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) rate: f64,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    pub(crate) note: String,
}

pub(crate) fn print(title: &str, context: &[String], rows: &[Row]) {
    println!();
    println!("{title}");
    for line in context {
        println!("  {line}");
    }
    println!();
    println!(
        "  {:<44} {:>12} {:>10} {:>10}  notes",
        "measurement", "per second", "p50", "p99"
    );
    println!("  {}", "-".repeat(100));
    for row in rows {
        println!(
            "  {:<44} {:>12} {:>10} {:>10}  {}",
            row.name,
            format!("{:.0}", row.rate),
            ms(row.p50),
            ms(row.p99),
            row.note
        );
    }
    println!();
}

/// `a / b` as `0.42x`.
pub(crate) fn ratio(a: f64, b: f64) -> String {
    if b <= 0.0 {
        return "n/a".to_owned();
    }
    format!("{:.2}x", a / b)
}

/// One row of the suite's summary: a figure next to its same-run baseline.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) measurement: String,
    pub(crate) figure: String,
    pub(crate) baseline: String,
    pub(crate) ratio: String,
}

impl Line {
    pub(crate) fn new(
        measurement: impl Into<String>,
        figure: impl Into<String>,
        baseline: impl Into<String>,
        ratio: impl Into<String>,
    ) -> Line {
        Line {
            measurement: measurement.into(),
            figure: figure.into(),
            baseline: baseline.into(),
            ratio: ratio.into(),
        }
    }
}

/// The suite's table, as Markdown so that it pastes into the README as printed.
pub(crate) fn print_summary(context: &[String], lines: &[Line]) {
    println!();
    println!("cardstream benchmark suite");
    for line in context {
        println!("  {line}");
    }
    println!();
    println!("| measurement | figure | baseline (same run) | ratio |");
    println!("| --- | --- | --- | --- |");
    for line in lines {
        println!(
            "| {} | {} | {} | {} |",
            line.measurement, line.figure, line.baseline, line.ratio
        );
    }
    println!();
}
