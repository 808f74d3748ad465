// graceful: bounded-concurrency async work with graceful shutdown, on Boost.Asio.
#pragma once

#include <boost/system/error_code.hpp>

#include <string_view>

/// systemd's notify protocol (sd_notify(3)), without libsystemd: a service
/// of `Type=notify` tells the service manager that it is ready, what it is
/// doing, that it is stopping, and asks for more time to stop.
///
/// The blocking graceful::run_tasks speaks it by itself
/// (run_options::notify_systemd); these are for a program that runs its own
/// loop (a server on a task_registry).
namespace graceful::systemd {

/// Whether `$NOTIFY_SOCKET` is set (and not empty): the process runs under a
/// service manager that listens.
bool enabled() noexcept;

/// Sends `state` to `$NOTIFY_SOCKET` as one datagram: newline-separated
/// `KEY=VALUE` assignments, e.g. "READY=1" or "STOPPING=1\nSTATUS=draining".
/// The socket is a path ("/run/systemd/notify") or an abstract name
/// ("@name"). Success and a no-op when not enabled(); otherwise the error of
/// the send (the system category), or boost::system::errc::invalid_argument
/// for an address that is neither kind or too long. Never blocks: when the
/// manager's queue is full the message is lost (resource_unavailable_try_again).
/// Never raises SIGPIPE; thread-safe (each call uses a socket of its own).
boost::system::error_code notify(std::string_view state) noexcept;

}  // namespace graceful::systemd
