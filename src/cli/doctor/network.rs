//! Socket buffer maxima against the tuning's SO_RCVBUF/SO_SNDBUF.

use super::Check;
use crate::cli::host::HostFiles;
use crate::config::Config;

pub fn socket_buffers_check(host: &HostFiles, config: &Config) -> Check {
    let wanted = [
        ("rmem_max", config.tuning.socket_receive_buffer_bytes),
        ("wmem_max", config.tuning.socket_send_buffer_bytes),
    ];
    let mut readings = Vec::new();
    let mut short = Vec::new();
    for (key, want) in wanted {
        let current: Option<u64> = host
            .read(&format!("/proc/sys/net/core/{key}"))
            .ok()
            .and_then(|v| v.parse().ok());
        readings.push(format!(
            "{key} {} (tuning {})",
            current.map_or("unknown".into(), |c| c.to_string()),
            if want == 0 {
                "kernel default".into()
            } else {
                want.to_string()
            }
        ));
        if want > 0 && current.is_some_and(|c| c < want as u64) {
            short.push(format!("sysctl -w net.core.{key}={want}"));
        }
    }
    let reading = readings.join(", ");
    if !short.is_empty() {
        return Check::warn(
            "socket_buffers",
            format!("{reading}: the kernel caps SO_RCVBUF/SO_SNDBUF at these"),
            format!("corelog tune (or {})", short.join("; ")),
        );
    }
    Check::ok("socket_buffers", reading)
}
