/* l1_get.c - L1 hits of pw_cache_get() per second, from C.
 *
 * Built and run by benches/compare_proxywhirl.py (not in CI):
 *   cc -O2 -I include benches/c/l1_get.c -L <target>/release -lpwcache -Wl,-rpath,<target>/release
 *   ./l1_get <work dir> <n> [rounds]
 * Stores <n> credentialed entries (n <= 1000, so all stay in L1 at the default L1 size) in a cache
 * under <work dir>, then reads them all <rounds> times (default 20) and prints one line:
 *   l1_get_ops_per_s <rate>
 * Each read includes what a C caller pays: the JSON of the entry and pw_string_free(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pwcache.h"

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *what, pw_status status) {
  fprintf(stderr, "%s failed (%d): %s\n", what, (int)status, pw_last_error());
  exit(1);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s <work dir> <n> [rounds]\n", argv[0]);
    return 2;
  }
  const char *dir = argv[1];
  long n = strtol(argv[2], NULL, 10);
  long rounds = argc > 3 ? strtol(argv[3], NULL, 10) : 20;
  if (n <= 0 || n > 1000 || rounds <= 0) {
    fprintf(stderr, "n must be in 1..1000 and rounds > 0\n");
    return 2;
  }

  char config[4096];
  snprintf(config, sizeof config, "{\"l2_cache_dir\": \"%s/l2\", \"l3_database_path\": \"%s/l3.db\"}",
           dir, dir);
  pw_cache *cache = NULL;
  pw_status status = pw_cache_new(config, &cache);
  if (status != PW_OK) fail("pw_cache_new", status);

  char (*keys)[32] = malloc((size_t)n * sizeof *keys);
  if (!keys) return 1;
  for (long i = 0; i < n; i++) {
    char entry[512];
    snprintf(keys[i], sizeof keys[i], "key-%06ld", i);
    snprintf(entry, sizeof entry,
             "{\"proxy_url\": \"http://10.%ld.%ld.%ld:8080\", \"username\": \"user%ld\","
             " \"password\": \"secret%ld\", \"source\": \"bench\"}",
             (i >> 16) & 255, (i >> 8) & 255, i & 255, i, i);
    status = pw_cache_put(cache, keys[i], entry);
    if (status != PW_OK) fail("pw_cache_put", status);
  }

  /* One warm-up round, then the timed rounds. */
  long total = 0;
  double start = 0.0;
  for (long r = 0; r <= rounds; r++) {
    if (r == 1) start = now_seconds();
    for (long i = 0; i < n; i++) {
      char *json = NULL;
      status = pw_cache_get(cache, keys[i], &json);
      if (status != PW_OK) fail("pw_cache_get", status);
      pw_string_free(json);
      if (r > 0) total++;
    }
  }
  double elapsed = now_seconds() - start;
  printf("l1_get_ops_per_s %.1f\n", (double)total / elapsed);

  free(keys);
  pw_cache_free(cache);
  return 0;
}
