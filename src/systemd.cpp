#include <graceful/systemd.hpp>

#include <boost/system/errc.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace graceful::systemd {

namespace {

namespace errc = boost::system::errc;

boost::system::error_code last_error() noexcept {
  return {errno, boost::system::system_category()};
}

const char* notify_socket() noexcept {
  const char* s = std::getenv("NOTIFY_SOCKET");
  return s != nullptr && *s != '\0' ? s : nullptr;
}

}  // namespace

bool enabled() noexcept { return notify_socket() != nullptr; }

boost::system::error_code notify(std::string_view state) noexcept {
  const char* socket_name = notify_socket();
  if (socket_name == nullptr) return {};
  const std::size_t name_length = std::strlen(socket_name);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if ((socket_name[0] != '/' && socket_name[0] != '@') || name_length > sizeof(address.sun_path)) {
    return errc::make_error_code(errc::invalid_argument);
  }
  std::memcpy(address.sun_path, socket_name, name_length);
  // An abstract name starts with a NUL and is matched by its length: the
  // address ends where the name does (no terminating NUL). A path needs none
  // either.
  if (socket_name[0] == '@') address.sun_path[0] = '\0';
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_length);

  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return last_error();
  boost::system::error_code ec;
  // Never blocks the caller (an event loop): a manager whose queue is full
  // loses this message (EAGAIN), as it would lose a datagram anyway.
  if (::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
               reinterpret_cast<const sockaddr*>(&address), length) < 0) {
    ec = last_error();
  }
  ::close(fd);
  return ec;
}

}  // namespace graceful::systemd
