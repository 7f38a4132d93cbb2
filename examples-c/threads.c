/* threads.c - several threads sharing one cache handle (every call may run concurrently). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <pwcache.h>

#define THREADS 4
#define PER_THREAD 200

static pw_cache *cache;

static void *worker(void *arg) {
  int id = *(const int *)arg;
  char key[64], entry[128];
  long hits = 0;
  for (int i = 0; i < PER_THREAD; i++) {
    snprintf(key, sizeof key, "t%d-%d", id, i);
    snprintf(entry, sizeof entry, "{\"proxy_url\": \"http://10.%d.0.%d:8080\"}", id, i % 250);
    if (pw_cache_put(cache, key, entry) != PW_OK) {
      fprintf(stderr, "put %s: %s\n", key, pw_last_error()); /* per-thread message */
      continue;
    }
    char *json = NULL;
    if (pw_cache_get(cache, key, &json) == PW_OK) {
      hits++;
      pw_string_free(json);
    }
  }
  printf("thread %d: %ld hits\n", id, hits);
  return NULL;
}

int main(void) {
  if (pw_cache_new("{\"l2_cache_dir\": \"pwcache-example/l2\","
                   " \"l3_database_path\": \"pwcache-example/l3.db\"}",
                   &cache) != PW_OK) {
    fprintf(stderr, "pw_cache_new: %s\n", pw_last_error());
    return 1;
  }
  pthread_t threads[THREADS];
  int ids[THREADS];
  for (int i = 0; i < THREADS; i++) {
    ids[i] = i;
    pthread_create(&threads[i], NULL, worker, &ids[i]);
  }
  for (int i = 0; i < THREADS; i++) {
    pthread_join(threads[i], NULL);
  }
  char *stats = NULL;
  if (pw_cache_get_statistics(cache, &stats) == PW_OK) {
    printf("%s\n", stats);
    pw_string_free(stats);
  }
  pw_cache_free(cache);
  return 0;
}
