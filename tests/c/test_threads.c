/* test_threads.c - 8 threads on one handle: puts, gets, deletes, invalidations, statistics,
 * exports and per-thread last errors, all at once. */
#include "pwtest.h"

#include <pthread.h>

#define THREADS 8
#define ROUNDS 150

static pw_cache *cache;
static const char *dir;
static int thread_failures[THREADS];

static void *worker(void *arg) {
  int id = (int)(long)arg;
  char key[64], entry[160], shared[32];
  for (int i = 0; i < ROUNDS; i++) {
    snprintf(key, sizeof key, "t%d-k%d", id, i);
    snprintf(entry, sizeof entry,
             "{\"proxy_url\": \"http://10.%d.%d.1:8080\", \"password\": \"pw%d\"}", id, i, i);
    if (pw_cache_put(cache, key, entry) != PW_OK) thread_failures[id]++;
    char *json = NULL;
    if (pw_cache_get(cache, key, &json) != PW_OK || strstr(json, key) == NULL)
      thread_failures[id]++;
    pw_string_free(json);

    /* A key every thread touches. */
    snprintf(shared, sizeof shared, "shared-%d", i % 5);
    pw_cache_put(cache, shared, "{\"proxy_url\": \"http://shared:1\"}");
    pw_status s = pw_cache_invalidate_by_health(cache, shared, NULL);
    if (s != PW_OK && s != PW_NOT_FOUND) thread_failures[id]++;

    /* This thread's last error is its own. */
    if (pw_cache_delete(cache, "never-stored") != PW_NOT_FOUND ||
        strstr(pw_last_error(), "never-stored") == NULL)
      thread_failures[id]++;
    if (pw_cache_put(cache, "", entry) != PW_INVALID_ARGUMENT ||
        strstr(pw_last_error(), "empty") == NULL)
      thread_failures[id]++;

    if (i % 50 == 0) {
      char *stats = NULL;
      if (pw_cache_get_statistics(cache, &stats) != PW_OK) thread_failures[id]++;
      pw_string_free(stats);
      char name[64];
      snprintf(name, sizeof name, "export-%d.jsonl", id);
      if (pw_cache_export_to_file(cache, pwt_path(dir, name), NULL, NULL) != PW_OK)
        thread_failures[id]++;
      if (pw_cache_cleanup_expired(cache, NULL) != PW_OK) thread_failures[id]++;
    }
    if (i % 3 == 0 && pw_cache_delete(cache, key) != PW_OK) thread_failures[id]++;
  }
  return NULL;
}

int main(void) {
  cache = pwt_cache("\"l1_config\": {\"max_entries\": 100}", &dir);
  pthread_t threads[THREADS];
  for (long i = 0; i < THREADS; i++) {
    CHECK(pthread_create(&threads[i], NULL, worker, (void *)i) == 0);
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join(threads[i], NULL);
    CHECK(thread_failures[i] == 0);
  }
  /* Every key not deleted is still there (L1 is small: most come from the lower tiers). */
  int present = 0;
  char key[64];
  for (int t = 0; t < THREADS; t++) {
    for (int i = 0; i < ROUNDS; i++) {
      snprintf(key, sizeof key, "t%d-k%d", t, i);
      char *json = NULL;
      pw_status s = pw_cache_get(cache, key, &json);
      CHECK(s == (i % 3 == 0 ? PW_NOT_FOUND : PW_OK));
      present += s == PW_OK;
      pw_string_free(json);
    }
  }
  CHECK(present == THREADS * (ROUNDS - ROUNDS / 3));
  pw_cache_free(cache);
  return pwt_finish("test_threads");
}
