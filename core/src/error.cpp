#include <memtrack/error.hpp>

#include <string>
#include <utility>

namespace memtrack {

std::string_view to_string(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::InvalidConfig:
      return "InvalidConfig";
    case ErrorKind::UnknownDevice:
      return "UnknownDevice";
    case ErrorKind::OutOfMemory:
      return "OutOfMemory";
    case ErrorKind::AmbiguousDevice:
      return "AmbiguousDevice";
    case ErrorKind::InvalidDeallocation:
      return "InvalidDeallocation";
    case ErrorKind::ParseError:
      return "ParseError";
    case ErrorKind::IoError:
      return "IoError";
  }
  return "UnknownErrorKind";
}

std::string Error::to_string() const {
  const std::string where = device ? device->to_string() : std::string{};
  switch (kind) {
    case ErrorKind::InvalidConfig:
      return "invalid config: " + (where.empty() ? "" : where + ": ") + detail;
    case ErrorKind::UnknownDevice:
      return where + ": unknown device, no GPU with id " + std::to_string(device->gpu_id()) +
             " is configured";
    case ErrorKind::OutOfMemory:
      if (device && device->is_auto()) {
        return "auto: cannot allocate " + std::to_string(requested_bytes) + " bytes, at most " +
               std::to_string(available_bytes) + " available on any device";
      }
      return where + ": cannot allocate " + std::to_string(requested_bytes) + " bytes, " +
             std::to_string(available_bytes) + " of " + std::to_string(limit_bytes) + " available";
    case ErrorKind::AmbiguousDevice:
      return "auto: " + detail + " needs a concrete device (cpu or gpu:N), not auto";
    case ErrorKind::InvalidDeallocation:
      return where + ": cannot deallocate " + std::to_string(requested_bytes) + " bytes, only " +
             std::to_string(allocated_bytes) + " allocated";
    case ErrorKind::ParseError:
    case ErrorKind::IoError:
      return detail;
  }
  return detail;
}

Error Error::invalid_config(std::string detail, std::optional<DevicePlacement> device) {
  Error error;
  error.kind = ErrorKind::InvalidConfig;
  error.device = device;
  error.detail = std::move(detail);
  return error;
}

Error Error::unknown_device(DevicePlacement device) {
  Error error;
  error.kind = ErrorKind::UnknownDevice;
  error.device = device;
  return error;
}

Error Error::out_of_memory(DevicePlacement device, std::uint64_t requested, std::uint64_t available,
                           std::uint64_t limit) {
  Error error;
  error.kind = ErrorKind::OutOfMemory;
  error.device = device;
  error.requested_bytes = requested;
  error.available_bytes = available;
  error.limit_bytes = limit;
  return error;
}

Error Error::ambiguous_device(std::string_view operation) {
  Error error;
  error.kind = ErrorKind::AmbiguousDevice;
  error.device = Auto{};
  error.detail = std::string(operation);
  return error;
}

Error Error::invalid_deallocation(DevicePlacement device, std::uint64_t requested,
                                  std::uint64_t allocated) {
  Error error;
  error.kind = ErrorKind::InvalidDeallocation;
  error.device = device;
  error.requested_bytes = requested;
  error.allocated_bytes = allocated;
  return error;
}

Error Error::parse_error(std::string detail) {
  Error error;
  error.kind = ErrorKind::ParseError;
  error.detail = std::move(detail);
  return error;
}

Error Error::io_error(std::string detail) {
  Error error;
  error.kind = ErrorKind::IoError;
  error.detail = std::move(detail);
  return error;
}

}  // namespace memtrack

namespace memtrack {

void throw_bad_result_access(const Error& error) {
  throw BadResultAccess(error);
}

}  // namespace memtrack
