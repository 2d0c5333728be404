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
