// Status propagation macros for otgen (Abseil 20220623 has none).
//
//   absl::Status Load(const std::string& path) {
//     OTGEN_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
//     OTGEN_RETURN_IF_ERROR(CheckHeader(bytes, path));
//     return absl::OkStatus();
//   }
#ifndef OTGEN_NN_STATUS_MACROS_H_
#define OTGEN_NN_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns the status of `expr` from the current function when it is not OK.
#define OTGEN_RETURN_IF_ERROR(expr)                        \
  do {                                                     \
    ::absl::Status otgen_status_ = (expr);                 \
    if (!otgen_status_.ok()) return otgen_status_;         \
  } while (0)

#define OTGEN_STATUS_CONCAT_INNER_(a, b) a##b
#define OTGEN_STATUS_CONCAT_(a, b) OTGEN_STATUS_CONCAT_INNER_(a, b)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, otherwise
// assigns (moves) the value into `lhs`, which may be a declaration.
#define OTGEN_ASSIGN_OR_RETURN(lhs, rexpr)                                       \
  OTGEN_ASSIGN_OR_RETURN_IMPL_(OTGEN_STATUS_CONCAT_(otgen_statusor_, __LINE__), \
                               lhs, rexpr)

#define OTGEN_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // OTGEN_NN_STATUS_MACROS_H_
