// The one exception type edgeqc throws for user-facing failures (bad input, bad files, bad options).
// Its message is printed as-is by the CLI, so it must read as one complete sentence for a user.
#pragma once

#include <stdexcept>
#include <string>

namespace edgeqc {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace edgeqc
