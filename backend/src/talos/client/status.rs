//! gRPC statuses turned into the console's `TalosError`s, and which failures are safe to retry.

use std::error::Error as _;

use tonic::{Code, Status};

use crate::talos::TalosError;

/// Whether a failed call certainly never reached the endpoint: the connection itself could not
/// be made (refused, unreachable, TLS handshake rejected). Anything else may have been delivered.
pub(crate) fn never_sent(status: &Status) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = status.source();
    while let Some(err) = cause {
        // tonic wraps every failure to set up the connection (TCP and TLS) in `ConnectError`.
        if err.downcast_ref::<tonic::ConnectError>().is_some()
            || err.downcast_ref::<rustls::Error>().is_some()
        {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
                    | std::io::ErrorKind::AddrNotAvailable
            ) {
                return true;
            }
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return true;
            }
        }
        cause = err.source();
    }
    false
}

/// Whether the call's deadline passed, on this side or at the server (grpc-go answers
/// DEADLINE_EXCEEDED; a tonic server answers CANCELLED "Timeout expired").
pub(crate) fn timed_out(status: &Status) -> bool {
    if status.code() == Code::DeadlineExceeded
        || (status.code() == Code::Cancelled && status.message() == "Timeout expired")
    {
        return true;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = status.source();
    while let Some(err) = cause {
        if err.downcast_ref::<tonic::TimeoutExpired>().is_some() {
            return true;
        }
        cause = err.source();
    }
    false
}

/// Turns a gRPC status into words for the console. Raw status text stays in the debug log: it
/// can hold internal addresses and Go error chains.
pub(crate) fn classify(status: &Status, method: &str, via_proxy: bool) -> TalosError {
    if status.source().is_some() {
        // Made on this side: the endpoint was never reached or the connection broke.
        return TalosError::Unreachable(local_failure(status));
    }
    let message = status.message().to_ascii_lowercase();
    if via_proxy && status.code() == Code::Unavailable {
        // apid answered, but could not forward the call to the node.
        return TalosError::Unreachable(if message.contains("connection refused") {
            "connection refused".into()
        } else {
            "unreachable through the endpoint".into()
        });
    }
    let words = if message.contains("only available on control plane") {
        "not a control-plane node"
    } else if message.contains("machine type is not set") {
        "machine type not set yet"
    } else if message.contains("etcd data directory is not empty") {
        "etcd data directory is not empty"
    } else if message.contains("not ready for recovery") {
        "not ready for recovery yet"
    } else if message.contains("bootstrap is not available") {
        "bootstrap not available yet"
    } else if message.contains("time is not in sync") {
        "time not in sync yet"
    } else if message.contains("apply configuration is already in progress") {
        "another configuration apply is in progress"
    } else if message.contains("no leader") {
        "etcd has no leader"
    } else if message.contains("request timed out") {
        "etcd request timed out"
    } else if message.contains("connection refused") {
        "etcd not running (connection refused)"
    } else if message.contains("deadline exceeded") {
        "deadline exceeded"
    } else if status.code() == Code::Unavailable && method.starts_with("Etcd") {
        // The node answered for itself, so what is unavailable behind it is its etcd.
        "etcd not reachable"
    } else {
        match status.code() {
            Code::PermissionDenied => "permission denied",
            Code::Unauthenticated => "not authenticated",
            Code::NotFound => "not found",
            Code::AlreadyExists => "already exists",
            Code::Unimplemented => "not supported by this node",
            Code::DeadlineExceeded => "deadline exceeded",
            Code::Unavailable => "unavailable",
            Code::FailedPrecondition => "not ready",
            Code::ResourceExhausted => "overloaded",
            Code::Cancelled => "cancelled",
            Code::InvalidArgument => "invalid request",
            _ => "failed on the node",
        }
    };
    TalosError::Refused(words.into())
}

fn local_failure(status: &Status) -> String {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = status.source();
    while let Some(err) = cause {
        if err.downcast_ref::<rustls::Error>().is_some() {
            return "TLS handshake failed".into();
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return "TLS handshake failed".into();
            }
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
                std::io::ErrorKind::TimedOut => return "connection timed out".into(),
                std::io::ErrorKind::ConnectionReset => return "connection reset".into(),
                std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable => {
                    return "host unreachable".into();
                }
                _ => {}
            }
        }
        cause = err.source();
    }
    match status.code() {
        Code::Cancelled | Code::DeadlineExceeded => "deadline exceeded".into(),
        _ => "cannot connect".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_statuses_become_short_words() {
        let refused = |code, msg: &str| classify(&Status::new(code, msg), "EtcdStatus", false);
        assert_eq!(
            refused(
                Code::Unknown,
                "failed to dial: dial tcp 127.0.0.1:2379: connect: connection refused"
            ),
            TalosError::Refused("etcd not running (connection refused)".into())
        );
        assert_eq!(
            refused(
                Code::Unimplemented,
                "etcd members API is only available on control plane nodes"
            ),
            TalosError::Refused("not a control-plane node".into())
        );
        assert_eq!(
            refused(Code::PermissionDenied, "not authorized"),
            TalosError::Refused("permission denied".into())
        );
        assert_eq!(
            refused(Code::Internal, "panic: runtime error at 0xdeadbeef"),
            TalosError::Refused("failed on the node".into())
        );
        assert_eq!(
            refused(Code::Unavailable, "etcd is not reachable: transport error"),
            TalosError::Refused("etcd not reachable".into())
        );
        assert_eq!(
            classify(
                &Status::unavailable(
                    "connection error: dial tcp 10.0.0.3:50000: connection refused"
                ),
                "Version",
                true
            ),
            TalosError::Unreachable("connection refused".into())
        );
    }

    #[test]
    fn connect_failures_were_never_sent_and_timeouts_are_told_apart() {
        let connect = Status::from_error(Box::new(tonic::ConnectError(Box::new(
            std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
        ))));
        assert!(never_sent(&connect));
        assert!(!timed_out(&connect));
        let expired = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert!(timed_out(&expired));
        assert!(!never_sent(&expired));
        let reset = Status::from_error(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        )));
        assert!(
            !never_sent(&reset),
            "a broken connection may have delivered the call"
        );
        assert!(!never_sent(&Status::unavailable("from the node")));
        assert!(timed_out(&Status::deadline_exceeded(
            "context deadline exceeded"
        )));
        assert!(timed_out(&Status::cancelled("Timeout expired")));
        assert!(!timed_out(&Status::cancelled("context canceled")));
    }

    #[test]
    fn local_failures_are_unreachable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let status = Status::from_error(Box::new(io));
        assert_eq!(
            classify(&status, "Version", false),
            TalosError::Unreachable("connection refused".into())
        );
        assert!(!classify(&status, "Version", false).node_answered());
    }
}
