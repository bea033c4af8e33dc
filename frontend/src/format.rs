//! Pure formatting and classification for the console's pages, kept free of the DOM so it can
//! be tested on the host.

use talos_dr_shared::{MemberState, ServiceHealth, ServiceState, VerdictLevel};

/// How a status reads at a glance. Every tone is always shown with a word and a glyph as well
/// as a colour, so no status depends on colour alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Warn,
    Bad,
    Unknown,
}

impl Tone {
    pub fn class(self) -> &'static str {
        match self {
            Tone::Good => "tone-good",
            Tone::Warn => "tone-warn",
            Tone::Bad => "tone-bad",
            Tone::Unknown => "tone-unknown",
        }
    }

    pub fn glyph(self) -> &'static str {
        match self {
            Tone::Good => "✔",
            Tone::Warn => "▲",
            Tone::Bad => "✖",
            Tone::Unknown => "?",
        }
    }
}

pub fn verdict_tone(level: VerdictLevel) -> Tone {
    match level {
        VerdictLevel::Healthy => Tone::Good,
        VerdictLevel::Degraded => Tone::Warn,
        VerdictLevel::QuorumRestorable | VerdictLevel::FullRecoveryNeeded => Tone::Bad,
        VerdictLevel::Unknown => Tone::Unknown,
    }
}

pub fn member_tone(state: MemberState) -> Tone {
    match state {
        MemberState::Healthy => Tone::Good,
        MemberState::Unhealthy => Tone::Bad,
        MemberState::Unknown => Tone::Unknown,
    }
}

pub fn service_tone(state: ServiceState) -> Tone {
    match state {
        ServiceState::Running => Tone::Good,
        ServiceState::Failed => Tone::Bad,
        ServiceState::Unknown => Tone::Unknown,
        _ => Tone::Warn,
    }
}

pub fn service_health_tone(health: ServiceHealth) -> Tone {
    match health {
        ServiceHealth::Healthy => Tone::Good,
        ServiceHealth::Unhealthy => Tone::Bad,
        ServiceHealth::Unknown => Tone::Unknown,
    }
}

pub fn service_health_word(health: ServiceHealth) -> &'static str {
    match health {
        ServiceHealth::Healthy => "healthy",
        ServiceHealth::Unhealthy => "unhealthy",
        ServiceHealth::Unknown => "not checked",
    }
}

/// Sizes the way `etcdctl` prints them: decimal units (1 kB = 1000 B).
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = u;
    }
    if value < 10.0 {
        format!("{value:.1} {unit}")
    } else {
        format!("{value:.0} {unit}")
    }
}

/// A duration in the coarse words an operator reads at a glance: "4 s", "3 min 2 s", "2 h 5 min".
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86_400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// How old something observed at `at_ms` is at `now_ms`. Clock skew between server and
/// browser can make it negative; that reads as "just now" rather than a negative age.
pub fn age(at_ms: i64, now_ms: i64) -> String {
    let ms = now_ms - at_ms;
    if ms < 1000 {
        "just now".to_string()
    } else {
        format!("{} ago", duration(ms))
    }
}

/// `2026-11-26 09:41:07 UTC`: UTC so that everyone on an incident call reads the same time.
pub fn utc_datetime(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, tod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        tod / 3600,
        (tod % 3600) / 60,
        tod % 60
    )
}

/// `09:41:07`: time of day only, for dense tables (the full stamp goes in the tooltip).
pub fn utc_time(ms: i64) -> String {
    let tod = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", tod / 3600, (tod % 3600) / 60, tod % 60)
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A name safe to use inside a `data-testid` (IPv6 colons and dots are kept; spaces are not).
pub fn test_id(prefix: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".:-_".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}-{clean}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_etcdctl() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(20_480), "20 kB");
        assert_eq!(bytes(2_125_824), "2.1 MB");
        assert_eq!(bytes(8_000_000_000), "8.0 GB");
    }

    #[test]
    fn durations_and_ages() {
        assert_eq!(duration(4_200), "4 s");
        assert_eq!(duration(182_000), "3 min 2 s");
        assert_eq!(duration(7_500_000), "2 h 5 min");
        assert_eq!(age(10_000, 9_000), "just now");
        assert_eq!(age(0, 12_000), "12 s ago");
    }

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_datetime(0), "1970-01-01 00:00:00 UTC");
        // 2026-11-26 09:41:07 UTC
        assert_eq!(utc_datetime(1_795_686_067_000), "2026-11-26 09:41:07 UTC");
        assert_eq!(utc_time(1_795_686_067_999), "09:41:07");
        assert_eq!(utc_datetime(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn test_ids_are_attribute_safe() {
        assert_eq!(test_id("node", "127.0.1.2"), "node-127.0.1.2");
        assert_eq!(test_id("member", "cp 1/x"), "member-cp_1_x");
    }

    #[test]
    fn every_status_has_a_word_and_glyph_not_only_a_colour() {
        for tone in [Tone::Good, Tone::Warn, Tone::Bad, Tone::Unknown] {
            assert!(!tone.glyph().is_empty());
        }
        assert_eq!(verdict_tone(VerdictLevel::QuorumRestorable), Tone::Bad);
        assert_eq!(verdict_tone(VerdictLevel::FullRecoveryNeeded), Tone::Bad);
        assert_eq!(member_tone(MemberState::Unhealthy), Tone::Bad);
        assert_eq!(service_tone(ServiceState::Waiting), Tone::Warn);
    }
}
