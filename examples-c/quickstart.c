/* quickstart.c - open a cache, store a proxy, read it back, print the statistics.
 *
 * Build: cc quickstart.c $(pkg-config --cflags --libs pwcache)
 */
#include <stdio.h>
#include <stdlib.h>

#include <pwcache.h>

/* Prints the failed call and the library's message, and exits. */
static void check(pw_status status, const char *what) {
  if (status != PW_OK) {
    fprintf(stderr, "%s failed (status %d): %s\n", what, (int)status, pw_last_error());
    exit(1);
  }
}

int main(void) {
  const char *config =
      "{\"l2_cache_dir\": \"pwcache-example/l2\","
      " \"l3_database_path\": \"pwcache-example/l3.db\","
      " \"default_ttl_seconds\": 600}";
  pw_cache *cache = NULL;
  check(pw_cache_new(config, &cache), "pw_cache_new");

  const char *url = "http://10.0.0.1:8080";
  char *key = NULL;
  check(pw_generate_cache_key(url, &key), "pw_generate_cache_key");

  check(pw_cache_put(cache, key,
                     "{\"proxy_url\": \"http://10.0.0.1:8080\", \"username\": \"alice\","
                     " \"password\": \"s3cret\", \"source\": \"example\"}"),
        "pw_cache_put");

  char *entry = NULL;
  check(pw_cache_get(cache, key, &entry), "pw_cache_get");
  printf("entry %s: %s\n", key, entry);
  pw_string_free(entry);

  /* A miss is a status, not an error to die on. */
  pw_status status = pw_cache_get(cache, "no-such-key", &entry);
  printf("miss: status %d (%s), entry %s\n", (int)status, pw_last_error(),
         entry == NULL ? "NULL" : "set");

  char *stats = NULL;
  check(pw_cache_get_statistics(cache, &stats), "pw_cache_get_statistics");
  printf("statistics: %s\n", stats);
  pw_string_free(stats);

  pw_string_free(key);
  pw_cache_free(cache);
  printf("pwcache %s\n", pw_version());
  return 0;
}
