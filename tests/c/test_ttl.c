/* test_ttl.c - the background sweeper: start/stop/is_running, sweeping, and freeing the cache
 * before its pw_ttl. */
#include "pwtest.h"

#include <time.h>

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

static uint64_t l1_size(pw_cache *cache) {
  char *stats = NULL;
  if (pw_cache_get_statistics(cache, &stats) != PW_OK) return 999;
  /* "l1_stats":{"hits":..,"misses":..,"current_size":N */
  const char *p = strstr(stats, "\"current_size\":");
  uint64_t n = p ? strtoull(p + strlen("\"current_size\":"), NULL, 10) : 999;
  pw_string_free(stats);
  return n;
}

static void lifecycle(void) {
  pw_cache *cache = pwt_cache("", NULL);
  pw_ttl *ttl = NULL;
  CHECK_OK(pw_ttl_new(cache, 0.02, &ttl));
  CHECK(ttl != NULL);
  CHECK(!pw_ttl_is_running(ttl)); /* a new manager is stopped */
  CHECK_OK(pw_ttl_stop(ttl));    /* stopping a stopped one is a no-op */
  CHECK_OK(pw_ttl_start(ttl));
  CHECK(pw_ttl_is_running(ttl));
  CHECK_OK(pw_ttl_start(ttl)); /* a no-op */
  CHECK(pw_ttl_is_running(ttl));
  CHECK_OK(pw_ttl_stop(ttl));
  CHECK(!pw_ttl_is_running(ttl));
  CHECK_OK(pw_ttl_start(ttl)); /* start after stop runs again */
  CHECK(pw_ttl_is_running(ttl));
  pw_ttl_free(ttl); /* stops it first */
  pw_cache_free(cache);
}

static void stop_is_prompt_with_a_long_interval(void) {
  pw_cache *cache = pwt_cache("", NULL);
  pw_ttl *ttl = NULL;
  CHECK_OK(pw_ttl_new(cache, 3600.0, &ttl));
  CHECK_OK(pw_ttl_start(ttl));
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  CHECK_OK(pw_ttl_stop(ttl));
  clock_gettime(CLOCK_MONOTONIC, &b);
  double seconds = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
  CHECK(seconds < 5.0);
  pw_ttl_free(ttl);
  pw_cache_free(cache);
}

static void sweeps_expired_entries(void) {
  pw_cache *cache = pwt_cache("", NULL);
  CHECK_OK(pw_cache_put(cache, "gone", "{\"proxy_url\": \"http://h:1\", \"ttl_seconds\": 0}"));
  CHECK_OK(pw_cache_put(cache, "kept", "{\"proxy_url\": \"http://h:2\"}"));
  CHECK(l1_size(cache) == 2);
  pw_ttl *ttl = NULL;
  CHECK_OK(pw_ttl_new(cache, 0.01, &ttl));
  CHECK_OK(pw_ttl_start(ttl));
  for (int i = 0; i < 200 && l1_size(cache) != 1; i++) sleep_ms(10);
  CHECK(l1_size(cache) == 1);
  pw_ttl_free(ttl);
  pw_cache_free(cache);
}

static void freeing_the_cache_first_is_safe(void) {
  pw_cache *cache = pwt_cache("", NULL);
  CHECK_OK(pw_cache_put(cache, "k", "{\"proxy_url\": \"http://h:1\", \"ttl_seconds\": 0}"));
  pw_ttl *ttl = NULL;
  CHECK_OK(pw_ttl_new(cache, 0.01, &ttl));
  CHECK_OK(pw_ttl_start(ttl));
  pw_cache_free(cache);
  sleep_ms(50); /* the sweeper keeps running over the cache's state */
  CHECK(pw_ttl_is_running(ttl));
  CHECK_OK(pw_ttl_stop(ttl));
  CHECK_OK(pw_ttl_start(ttl));
  pw_ttl_free(ttl);

  /* A stopped sweeper outliving its cache, too. */
  cache = pwt_cache("", NULL);
  CHECK_OK(pw_ttl_new(cache, 1.0, &ttl));
  pw_cache_free(cache);
  CHECK(!pw_ttl_is_running(ttl));
  pw_ttl_free(ttl);
}

static void background_cleanup_of_the_cache_itself(void) {
  pw_cache *cache =
      pwt_cache("\"enable_background_cleanup\": true, \"cleanup_interval_seconds\": 0.01", NULL);
  CHECK_OK(pw_cache_put(cache, "gone", "{\"proxy_url\": \"http://h:1\", \"ttl_seconds\": 0}"));
  for (int i = 0; i < 200 && l1_size(cache) != 0; i++) sleep_ms(10);
  CHECK(l1_size(cache) == 0);
  pw_cache_free(cache); /* stops its own cleanup */
}

static void intervals_past_a_year_are_refused(void) {
  /* 1e19, 9.3e18 and 2^63 used to be accepted and then overflowed the sweeper's deadline,
   * ending its thread; the bound is 365 days (31536000 s), inclusive. */
  static const double too_long[] = {1e19, 9.3e18, 9223372036854775808.0, 1e300, 31536001.0,
                                    31536000.001};
  static const char *const too_long_json[] = {"10000000000000000000", "9300000000000000000",
                                              "9223372036854775808", "1e300", "31536001",
                                              "31536000.001"};
  pw_cache *cache = pwt_cache("", NULL);
  for (size_t i = 0; i < sizeof too_long / sizeof too_long[0]; i++) {
    pw_ttl *ttl = (pw_ttl *)&ttl; /* not NULL: the call must clear it */
    CHECK_STATUS(pw_ttl_new(cache, too_long[i], &ttl), PW_INVALID_ARGUMENT);
    CHECK(ttl == NULL);
    CHECK_CONTAINS(pw_last_error(), "31536000");
    pw_ttl_free(ttl);

    char extra[160];
    snprintf(extra, sizeof extra,
             "\"enable_background_cleanup\": true, \"cleanup_interval_seconds\": %s",
             too_long_json[i]);
    const char *dir = pwt_tempdir();
    pw_cache *other = NULL;
    CHECK_STATUS(pw_cache_new(pwt_config(dir, extra), &other), PW_INVALID_JSON);
    CHECK(other == NULL);
    CHECK_CONTAINS(pw_last_error(), "cleanup_interval_seconds");
    CHECK_CONTAINS(pw_last_error(), "31536000");
    pw_cache_free(other);
  }

  /* The bound itself: accepted, and its sweeper keeps running. */
  pw_ttl *ttl = NULL;
  CHECK_OK(pw_ttl_new(cache, 31536000.0, &ttl));
  CHECK_OK(pw_ttl_start(ttl));
  sleep_ms(100);
  CHECK(pw_ttl_is_running(ttl));
  pw_ttl_free(ttl);
  pw_cache_free(cache);
  cache = pwt_cache("\"enable_background_cleanup\": true, \"cleanup_interval_seconds\": 31536000",
                    NULL);
  pw_cache_free(cache);
}

int main(void) {
  lifecycle();
  stop_is_prompt_with_a_long_interval();
  sweeps_expired_entries();
  freeing_the_cache_first_is_safe();
  background_cleanup_of_the_cache_itself();
  intervals_past_a_year_are_refused();
  return pwt_finish("test_ttl");
}
