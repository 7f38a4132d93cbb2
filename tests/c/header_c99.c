/* The public header on its own, as strict C99 (built with -Wall -Wextra -Wpedantic -Werror). */
#include "pwcache.h"
#include "pwcache.h" /* the include guard works */

int main(void) {
  pw_status status = PW_OK;
  pw_log_level level = PW_LOG_INFO;
  pw_log_fn fn = 0;
  pw_cache *cache = 0;
  pw_ttl *ttl = 0;
  (void)fn;
  (void)cache;
  (void)ttl;
  return (int)status + (int)level - 3 + (PW_VERSION_NUMBER >= 0 ? 0 : 1);
}
