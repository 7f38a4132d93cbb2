/* A tiny program using an installed pwcache. */
#include <pwcache.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  pw_cache *cache = NULL;
  if (pw_cache_new("{\"l2_cache_dir\": \"consumer-cache/l2\","
                   " \"l3_database_path\": \"consumer-cache/l3.db\"}",
                   &cache) != PW_OK) {
    fprintf(stderr, "pw_cache_new: %s\n", pw_last_error());
    return 1;
  }
  int ok = pw_cache_put(cache, "k", "{\"proxy_url\": \"http://h:1\"}") == PW_OK;
  char *json = NULL;
  ok = ok && pw_cache_get(cache, "k", &json) == PW_OK && strstr(json, "http://h:1") != NULL;
  pw_string_free(json);
  pw_cache_free(cache);
  printf("consumer with pwcache %s: %s\n", pw_version(), ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
