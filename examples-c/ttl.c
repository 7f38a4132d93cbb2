/* ttl.c - a background sweeper removing expired entries, with the library's log on stderr. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <pwcache.h>

static void log_to_stderr(void *user_data, pw_log_level level, const char *message) {
  (void)user_data;
  fprintf(stderr, "[pwcache %d] %s\n", (int)level, message);
}

int main(void) {
  pw_set_logger(log_to_stderr, NULL, PW_LOG_DEBUG);

  pw_cache *cache = NULL;
  if (pw_cache_new("{\"l2_cache_dir\": \"pwcache-example/l2\","
                   " \"l3_database_path\": \"pwcache-example/l3.db\"}",
                   &cache) != PW_OK) {
    fprintf(stderr, "pw_cache_new: %s\n", pw_last_error());
    return 1;
  }
  /* ttl_seconds 0: expired at once, so the first sweep removes it. */
  pw_cache_put(cache, "short-lived", "{\"proxy_url\": \"http://10.0.0.9:3128\", \"ttl_seconds\": 0}");

  pw_ttl *ttl = NULL;
  if (pw_ttl_new(cache, 0.05, &ttl) != PW_OK) {
    fprintf(stderr, "pw_ttl_new: %s\n", pw_last_error());
    return 1;
  }
  pw_ttl_start(ttl);
  struct timespec pause = {0, 200 * 1000 * 1000};
  nanosleep(&pause, NULL);
  printf("running: %s\n", pw_ttl_is_running(ttl) ? "yes" : "no");

  /* The sweeper keeps the cache's state alive: the cache handle may go first. */
  pw_cache_free(cache);
  pw_ttl_free(ttl);
  pw_set_logger(NULL, NULL, PW_LOG_ERROR);
  return 0;
}
