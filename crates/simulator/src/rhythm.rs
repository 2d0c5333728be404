//! Purchase times for a simulated history: a program's weekly and daily rhythm (busier on
//! Fridays and Saturdays, quiet on Sundays; peaks at lunch and in the evening, little at
//! night) and a gentle growth over the period, so that charts have a shape.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Relative activity by weekday, Monday first.
const WEEKDAY: [f64; 7] = [0.9, 0.95, 1.0, 1.05, 1.35, 1.25, 0.65];
/// Relative activity by hour of the day (UTC).
const HOUR: [f64; 24] = [
    0.08, 0.05, 0.04, 0.04, 0.05, 0.1, 0.3, 0.6, 0.9, 0.85, 0.85, 1.05, 1.6, 1.4, 0.95, 0.85, 0.9,
    1.1, 1.5, 1.45, 1.05, 0.7, 0.4, 0.18,
];
/// Activity at the end of the period relative to its start.
const GROWTH: f64 = 1.3;

/// The weight of the hour starting at `t` (unix seconds) at `progress` (0 to 1) through the
/// period.
fn weight(t: i64, progress: f64) -> f64 {
    let day = t.div_euclid(86_400);
    // 1970-01-01 was a Thursday (index 3).
    let weekday = usize::try_from((day + 3).rem_euclid(7)).unwrap_or(0);
    let hour = usize::try_from(t.rem_euclid(86_400) / 3_600).unwrap_or(0);
    WEEKDAY[weekday] * HOUR[hour] * (1.0 + (GROWTH - 1.0) * progress)
}

/// `count` purchase times in `[from, to)`, oldest first, spread by the rhythm. Each hour gets
/// its share rounded with the remainder carried on, so that the total is exact; within an hour
/// the times are uniform.
pub(crate) fn history(rng: &mut ChaCha8Rng, from: i64, to: i64, count: u64) -> Vec<i64> {
    if to <= from || count == 0 {
        return Vec::new();
    }
    let first_hour = from.div_euclid(3_600) * 3_600;
    let hours: Vec<i64> = (first_hour..to).step_by(3_600).collect();
    let span = (to - from) as f64;
    let weights: Vec<f64> = hours
        .iter()
        .map(|&h| weight(h, (h.max(from) - from) as f64 / span))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut times = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    let mut carry = 0.0;
    for (&hour, w) in hours.iter().zip(&weights) {
        let share = count as f64 * w / total + carry;
        let n = share.floor();
        carry = share - n;
        let (start, end) = (hour.max(from), (hour + 3_600).min(to));
        for _ in 0..(n as u64) {
            times.push(rng.random_range(start..end));
        }
    }
    // Rounding can leave the last one or two for the final hour.
    while (times.len() as u64) < count {
        times.push(rng.random_range(from.max(to - 3_600)..to));
    }
    times.truncate(usize::try_from(count).unwrap_or(usize::MAX));
    times.sort_unstable();
    times
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn the_history_has_exactly_its_count_within_its_period_in_order() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (from, to) = (1_760_000_123, 1_760_000_123 + 90 * DAY);
        let times = history(&mut rng, from, to, 5_000);
        assert_eq!(times.len(), 5_000);
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(times.iter().all(|t| (from..to).contains(t)));
    }

    #[test]
    fn weekends_nights_and_growth_show() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        // 2025-09-01 was a Monday.
        let from = 1_756_684_800;
        let times = history(&mut rng, from, from + 91 * DAY, 20_000);
        let by = |f: &dyn Fn(i64) -> bool| times.iter().filter(|&&t| f(t)).count();
        let weekday = |t: i64| (t.div_euclid(DAY) + 3).rem_euclid(7);
        let hour = |t: i64| t.rem_euclid(DAY) / 3_600;
        let fridays = by(&|t| weekday(t) == 4);
        let sundays = by(&|t| weekday(t) == 6);
        assert!(
            fridays as f64 > 1.8 * sundays as f64,
            "{fridays} vs {sundays}"
        );
        let lunch = by(&|t| hour(t) == 12);
        let night = by(&|t| hour(t) == 3);
        assert!(lunch > 20 * night, "{lunch} vs {night}");
        let first = by(&|t| t < from + 30 * DAY);
        let last = by(&|t| t >= from + 61 * DAY);
        assert!(last as f64 > 1.15 * first as f64, "{first} vs {last}");
    }
}
