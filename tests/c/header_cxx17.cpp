// The public header on its own, as C++17 (built with -Wall -Wextra -Wpedantic -Werror).
#include "pwcache.h"

#include <cstring>

static void on_log(void *, pw_log_level, const char *) {}

int main() {
  pw_log_fn fn = on_log;
  pw_status status = pw_set_logger(fn, nullptr, PW_LOG_ERROR);
  pw_set_logger(nullptr, nullptr, PW_LOG_ERROR);
  return status == PW_OK && std::strlen(pw_version()) > 0 ? 0 : 1;
}
