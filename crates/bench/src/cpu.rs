//! CPU time the rest of the machine spends (Linux `/proc`): everything but
//! this process, so the services under test (PostgreSQL, RabbitMQ, ingest
//! and the workers) and not the producers or a receiver the bench runs.
//! Throughput on this 2-core machine swings by ±10 % from one pass to the
//! next (disk flushes, the broker's own housekeeping); the CPU a pass costs
//! swings much less, so a small cost shows in it first.

/// Clock ticks per second of `/proc/stat` and `/proc/self/stat` (USER_HZ,
/// 100 on every Linux architecture that matters here).
pub(crate) const TICKS: f64 = 100.0;

/// A reading of the machine's and this process's CPU time, in ticks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reading {
    machine: u64,
    own: u64,
}

/// Now; `None` where `/proc` does not tell.
pub(crate) fn read() -> Option<Reading> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let machine = busy(stat.lines().next()?)?;
    let own = own(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    Some(Reading { machine, own })
}

/// Seconds of CPU the rest of the machine spent since `start`.
pub(crate) fn others_since(start: Option<Reading>) -> Option<f64> {
    let (start, end) = (start?, read()?);
    let machine = end.machine.saturating_sub(start.machine);
    let own = end.own.saturating_sub(start.own);
    Some(machine.saturating_sub(own) as f64 / TICKS)
}

/// The command name of a `/proc/<pid>/stat` line (field 2, in parentheses).
pub(crate) fn name(stat: &str) -> Option<&str> {
    stat.get(stat.find('(')? + 1..stat.rfind(')')?)
}

/// Busy ticks of the `cpu` line of `/proc/stat`: user, nice, system, irq,
/// softirq and steal (not idle, not waiting for I/O).
pub(crate) fn busy(line: &str) -> Option<u64> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, _idle, _iowait, irq, softirq, steal] = v[..] else {
        return None;
    };
    Some(user + nice + system + irq + softirq + steal)
}

/// utime + stime of `/proc/self/stat` (fields 14 and 15; the command name,
/// field 2, is in parentheses and may hold spaces).
pub(crate) fn own(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name, field 3 (state) is at index 0: utime is 14 - 3.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_its_name_and_ticks() {
        let line = "42 (beam.smp) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0";
        assert_eq!(name(line), Some("beam.smp"));
        assert_eq!(own(line), Some(300));
    }

    #[test]
    fn the_cpu_line_counts_busy_ticks_only() {
        assert_eq!(
            busy("cpu  100 5 50 1000 70 3 2 1 0 0"),
            Some(100 + 5 + 50 + 3 + 2 + 1)
        );
        assert_eq!(busy("cpu0 1 2 3 4 5 6 7 8"), None);
        assert_eq!(busy("cpu  1 2"), None);
    }

    #[test]
    fn own_time_is_read_past_a_name_with_spaces() {
        let stat = "42 (a b) S 1 42 42 0 -1 4194560 100 0 0 0 17 4 0 0 20 0 1 0";
        assert_eq!(own(stat), Some(21));
    }

    #[test]
    fn this_machine_tells() {
        if cfg!(target_os = "linux") {
            assert!(read().is_some());
        }
    }
}
