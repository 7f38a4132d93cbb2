/* test_api.c - every function of the C API on good input, and every status it can return. */
#include "pwtest.h"

static void version_matches_the_crate(void) {
  CHECK(strcmp(pw_version(), PWCACHE_EXPECTED_VERSION) == 0);
  char packed[32];
  snprintf(packed, sizeof packed, "%d.%d.%d", PW_VERSION_MAJOR, PW_VERSION_MINOR,
           PW_VERSION_PATCH);
  CHECK(strcmp(packed, PWCACHE_EXPECTED_VERSION) == 0);
  CHECK(PW_VERSION_NUMBER == PW_VERSION_MAJOR * 10000 + PW_VERSION_MINOR * 100 + PW_VERSION_PATCH);
}

static void status_values_are_stable(void) {
  CHECK(PW_OK == 0 && PW_NOT_FOUND == 1 && PW_INVALID_ARGUMENT == 2 && PW_INVALID_JSON == 3);
  CHECK(PW_IO_ERROR == 4 && PW_STORAGE_ERROR == 5 && PW_UNSUPPORTED == 6);
  CHECK(PW_CRYPTO_ERROR == 7 && PW_PANIC == 8);
  CHECK(PW_LOG_ERROR == 1 && PW_LOG_WARN == 2 && PW_LOG_INFO == 3 && PW_LOG_DEBUG == 4 &&
        PW_LOG_TRACE == 5);
}

static void last_error_is_empty_until_a_failure_and_after_a_success(void) {
  CHECK(pw_last_error() != NULL);
  char *key = NULL;
  CHECK_STATUS(pw_generate_cache_key(NULL, &key), PW_INVALID_ARGUMENT);
  CHECK_CONTAINS(pw_last_error(), "proxy_url");
  CHECK_OK(pw_generate_cache_key("http://h:1", &key));
  CHECK(strcmp(pw_last_error(), "") == 0);
  pw_string_free(key);
  pw_string_free(NULL);
}

static void generate_cache_key_matches_upstream(void) {
  char *key = NULL;
  CHECK_OK(pw_generate_cache_key("socks5://proxy0.example.net:1080", &key));
  CHECK(key != NULL && strcmp(key, "84d7754142f9018a") == 0);
  pw_string_free(key);
}

static void put_get_delete_round_trip(void) {
  pw_cache *cache = pwt_cache("", NULL);
  CHECK_OK(pw_cache_put(cache, "k1",
                        "{\"proxy_url\": \"http://10.0.0.1:8080\", \"username\": \"alice\","
                        " \"password\": \"pw1\", \"key\": \"ignored\"}"));
  char *json = NULL;
  CHECK_OK(pw_cache_get(cache, "k1", &json));
  CHECK_CONTAINS(json, "\"key\":\"k1\"");
  CHECK_CONTAINS(json, "\"proxy_url\":\"http://10.0.0.1:8080\"");
  CHECK_CONTAINS(json, "\"password\":\"pw1\""); /* get returns credentials in plain text */
  CHECK_CONTAINS(json, "\"access_count\":1");
  CHECK_CONTAINS(json, "\"source\":\"user\"");
  pw_string_free(json);
  CHECK_OK(pw_cache_get(cache, "k1", &json));
  CHECK_CONTAINS(json, "\"access_count\":2");
  pw_string_free(json);

  CHECK_OK(pw_cache_delete(cache, "k1"));
  json = (char *)"sentinel";
  CHECK_STATUS(pw_cache_get(cache, "k1", &json), PW_NOT_FOUND);
  CHECK(json == NULL);
  CHECK_CONTAINS(pw_last_error(), "k1");
  CHECK_STATUS(pw_cache_delete(cache, "k1"), PW_NOT_FOUND);
  CHECK(pw_last_error()[0] != '\0');
  pw_cache_free(cache);
}

static void put_many_stores_a_batch(void) {
  pw_cache *cache = pwt_cache("", NULL);
  uint64_t stored = 99;
  CHECK_OK(pw_cache_put_many(cache,
                             "[{\"key\": \"a\", \"proxy_url\": \"http://10.0.0.1:80\","
                             "  \"username\": \"alice\", \"password\": \"pw1\"},"
                             " {\"key\": \"b\", \"proxy_url\": \"http://10.0.0.2:80\","
                             "  \"source\": \"batch\", \"ttl_seconds\": 120},"
                             " {\"proxy_url\": \"http://10.0.0.3:80\", \"key\": \"c\"}]",
                             &stored));
  CHECK(stored == 3);
  char *json = NULL;
  CHECK_OK(pw_cache_get(cache, "a", &json));
  CHECK_CONTAINS(json, "\"key\":\"a\"");
  CHECK_CONTAINS(json, "\"password\":\"pw1\"");
  pw_string_free(json);
  CHECK_OK(pw_cache_get(cache, "b", &json));
  CHECK_CONTAINS(json, "\"source\":\"batch\"");
  CHECK_CONTAINS(json, "\"ttl_seconds\":120");
  pw_string_free(json);
  CHECK_OK(pw_cache_get(cache, "c", &json));
  pw_string_free(json);
  char *stats = NULL;
  CHECK_OK(pw_cache_get_statistics(cache, &stats));
  CHECK_CONTAINS(stats, "\"l3_stats\":{\"hits\":0,\"misses\":0,\"current_size\":3");
  pw_string_free(stats);

  /* The empty array stores nothing; out_stored may be NULL. */
  stored = 99;
  CHECK_OK(pw_cache_put_many(cache, "[]", &stored));
  CHECK(stored == 0);
  CHECK_OK(pw_cache_put_many(cache, "[{\"key\": \"d\", \"proxy_url\": \"http://d:1\"}]", NULL));
  CHECK_OK(pw_cache_get(cache, "d", &json));
  pw_string_free(json);
  pw_cache_free(cache);
}

static void an_expired_entry_is_not_found(void) {
  pw_cache *cache = pwt_cache("", NULL);
  CHECK_OK(pw_cache_put(cache, "old", "{\"proxy_url\": \"http://h:1\", \"ttl_seconds\": 0}"));
  char *json = NULL;
  CHECK_STATUS(pw_cache_get(cache, "old", &json), PW_NOT_FOUND);
  CHECK(json == NULL);
  pw_cache_free(cache);
}

static void clear_and_cleanup_count_keys(void) {
  pw_cache *cache = pwt_cache("", NULL);
  CHECK_OK(pw_cache_put(cache, "a", "{\"proxy_url\": \"http://a:1\"}"));
  CHECK_OK(pw_cache_put(cache, "b", "{\"proxy_url\": \"http://b:1\"}"));
  CHECK_OK(pw_cache_put(cache, "x", "{\"proxy_url\": \"http://x:1\", \"ttl_seconds\": 0}"));
  uint64_t removed = 99;
  CHECK_OK(pw_cache_cleanup_expired(cache, &removed));
  CHECK(removed == 1);
  CHECK_OK(pw_cache_cleanup_expired(cache, NULL));
  uint64_t cleared = 99;
  CHECK_OK(pw_cache_clear(cache, &cleared));
  CHECK(cleared == 2);
  CHECK_OK(pw_cache_clear(cache, NULL));
  pw_cache_free(cache);
}

static void invalidate_by_health_evicts_at_the_threshold(void) {
  pw_cache *cache = pwt_cache("\"failure_threshold\": 2", NULL);
  CHECK_OK(pw_cache_put(cache, "k", "{\"proxy_url\": \"http://h:1\"}"));
  bool evicted = true;
  CHECK_OK(pw_cache_invalidate_by_health(cache, "k", &evicted));
  CHECK(!evicted);
  char *json = NULL;
  CHECK_OK(pw_cache_get(cache, "k", &json));
  CHECK_CONTAINS(json, "\"health_status\":\"unhealthy\"");
  CHECK_CONTAINS(json, "\"failure_count\":1");
  pw_string_free(json);
  CHECK_OK(pw_cache_invalidate_by_health(cache, "k", &evicted));
  CHECK(evicted);
  evicted = true;
  CHECK_STATUS(pw_cache_invalidate_by_health(cache, "k", &evicted), PW_NOT_FOUND);
  CHECK(!evicted);
  CHECK_STATUS(pw_cache_invalidate_by_health(cache, "k", NULL), PW_NOT_FOUND);
  pw_cache_free(cache);
}

static void statistics_are_json_with_the_upstream_keys(void) {
  pw_cache *cache = pwt_cache("", NULL);
  CHECK_OK(pw_cache_put(cache, "k", "{\"proxy_url\": \"http://h:1\"}"));
  char *json = NULL;
  CHECK_OK(pw_cache_get(cache, "k", &json));
  pw_string_free(json);
  char *stats = NULL;
  CHECK_OK(pw_cache_get_statistics(cache, &stats));
  CHECK_CONTAINS(stats, "\"l1_stats\"");
  CHECK_CONTAINS(stats, "\"l3_stats\"");
  CHECK_CONTAINS(stats, "\"hits\":1");
  CHECK_CONTAINS(stats, "\"overall_hit_rate\"");
  CHECK_CONTAINS(stats, "\"total_size\"");
  pw_string_free(stats);
  pw_cache_free(cache);
}

static void warm_and_export_round_trip(void) {
  const char *dir = NULL;
  pw_cache *cache = pwt_cache("", &dir);
  const char *jsonl = pwt_path(dir, "proxies.jsonl");
  pwt_write(jsonl,
            "{\"proxy_url\": \"http://10.0.0.1:80\", \"username\": \"u\", \"password\": \"hunter2\"}\n"
            "{\"proxy_url\": \"http://10.0.0.2:80\"}\n"
            "not json\n"
            "{\"no_url\": 1}\n");
  char *counts = NULL;
  CHECK_OK(pw_cache_warm_from_file(cache, jsonl, -1, &counts));
  CHECK_CONTAINS(counts, "\"loaded\":2");
  CHECK_CONTAINS(counts, "\"skipped\":1");
  CHECK_CONTAINS(counts, "\"failed\":1");
  /* Each row left out, with its line and why. */
  CHECK_CONTAINS(counts, "\"problems\":[{\"line\":3,\"outcome\":\"failed\",\"reason\":\"not JSON");
  CHECK_CONTAINS(counts, "{\"line\":4,\"outcome\":\"skipped\",\"reason\":\"no `proxy_url`\"}]");
  CHECK_CONTAINS(counts, "\"problems_not_listed\":0");
  pw_string_free(counts);
  CHECK_OK(pw_cache_warm_from_file(cache, jsonl, 3600, NULL));

  const char *csv = pwt_path(dir, "proxies.CSV");
  pwt_write(csv, "proxy_url,source,extra\nhttp://10.0.0.3:80,csvsrc,x\n");
  CHECK_OK(pw_cache_warm_from_file(cache, csv, -1, &counts));
  CHECK_CONTAINS(counts, "\"loaded\":1");
  pw_string_free(counts);

  const char *out = pwt_path(dir, "export.jsonl");
  CHECK_OK(pw_cache_export_to_file(cache, out, NULL, &counts));
  CHECK_CONTAINS(counts, "\"exported\":3");
  pw_string_free(counts);
  char *text = pwt_read(out);
  CHECK(text != NULL && strstr(text, "hunter2") == NULL);
  CHECK_CONTAINS(text, "\"password\":\"***\"");
  free(text);

  CHECK_OK(pw_cache_export_to_file(cache, out, "{\"include_credentials\": true}", NULL));
  text = pwt_read(out);
  CHECK_CONTAINS(text, "hunter2");
  free(text);
  CHECK_OK(pw_cache_export_to_file(cache, out, "{\"include_credentials\": false}", NULL));
  CHECK_OK(pw_cache_export_to_file(cache, out, "{}", NULL));
  pw_cache_free(cache);
}

static void statuses_of_files_and_storage(void) {
  const char *dir = NULL;
  pw_cache *cache = pwt_cache("", &dir);
  char *counts = (char *)"sentinel";
  /* Another kind of file. */
  CHECK_STATUS(pw_cache_warm_from_file(cache, pwt_path(dir, "p.txt"), -1, &counts),
               PW_UNSUPPORTED);
  CHECK(counts == NULL);
  /* Missing file, a directory. */
  counts = (char *)"sentinel";
  CHECK_STATUS(pw_cache_warm_from_file(cache, pwt_path(dir, "missing.json"), -1, &counts),
               PW_IO_ERROR);
  CHECK(counts == NULL);
  mkdir(pwt_path(dir, "adir.jsonl"), 0700);
  CHECK_STATUS(pw_cache_warm_from_file(cache, pwt_path(dir, "adir.jsonl"), -1, NULL),
               PW_IO_ERROR);
  /* A corrupt .json: nothing loaded. */
  pwt_write(pwt_path(dir, "bad.json"), "[{\"proxy_url\": \"http://h:1\"}, {garbage");
  CHECK_STATUS(pw_cache_warm_from_file(cache, pwt_path(dir, "bad.json"), -1, &counts),
               PW_INVALID_JSON);
  pwt_write(pwt_path(dir, "obj.json"), "{\"proxy_url\": \"http://h:1\"}");
  CHECK_STATUS(pw_cache_warm_from_file(cache, pwt_path(dir, "obj.json"), -1, NULL),
               PW_INVALID_JSON);
  /* A CSV without a proxy_url column: not JSON, so its own status; the columns are named. */
  pwt_write(pwt_path(dir, "nourl.csv"), "url,user,pass\nhttp://h:1,u,p\n");
  counts = (char *)"sentinel";
  CHECK_STATUS(pw_cache_warm_from_file(cache, pwt_path(dir, "nourl.csv"), -1, &counts),
               PW_INVALID_INPUT);
  CHECK(counts == NULL);
  CHECK_CONTAINS(pw_last_error(), "\"url\", \"user\", \"pass\"");
  /* A proxy_url that is not a URL. */
  CHECK_STATUS(pw_cache_put(cache, "k", "{\"proxy_url\": \"not a url\"}"), PW_INVALID_ARGUMENT);
  CHECK_CONTAINS(pw_last_error(), "proxy_url");
  CHECK_STATUS(pw_cache_put(cache, "k", "{\"proxy_url\": \"   \"}"), PW_INVALID_ARGUMENT);
  uint64_t cleared = 0;
  CHECK_OK(pw_cache_clear(cache, &cleared));
  CHECK(cleared == 0);
  /* Export to a directory, under a regular file. */
  counts = (char *)"sentinel";
  CHECK_STATUS(pw_cache_export_to_file(cache, dir, NULL, &counts), PW_IO_ERROR);
  CHECK(counts == NULL);
  pwt_write(pwt_path(dir, "file"), "x");
  CHECK_STATUS(pw_cache_export_to_file(cache, pwt_path(dir, "file/out.jsonl"), NULL, NULL),
               PW_IO_ERROR);
  pw_cache_free(cache);

  /* Only L3 enabled, and its database path is a directory: no tier can store. */
  const char *dir2 = pwt_tempdir();
  char config[1024];
  snprintf(config, sizeof config,
           "{\"l1_config\": {\"enabled\": false}, \"l2_config\": {\"enabled\": false},"
           " \"l2_cache_dir\": \"%s/l2\", \"l3_database_path\": \"%s\"}",
           dir2, dir2);
  CHECK_OK(pw_cache_new(config, &cache));
  CHECK_STATUS(pw_cache_put(cache, "k", "{\"proxy_url\": \"http://h:1\"}"), PW_STORAGE_ERROR);
  char *stats = NULL;
  CHECK_OK(pw_cache_get_statistics(cache, &stats));
  CHECK_CONTAINS(stats, "\"l3_degraded\":true");
  pw_string_free(stats);
  pw_cache_free(cache);
}

static void crypto_error_for_a_bad_key(void) {
  const char *dir = pwt_tempdir();
  pw_cache *cache = (pw_cache *)&cache; /* not NULL, to see it reset */
  CHECK_STATUS(pw_cache_new(pwt_config(dir, "\"encryption_key\": \"not-a-fernet-key\""), &cache),
               PW_CRYPTO_ERROR);
  CHECK(cache == NULL);
  CHECK(strstr(pw_last_error(), "not-a-fernet-key") == NULL);
}

static void null_config_means_defaults(void) {
  /* The defaults use relative paths: ctest runs this test in its own directory. */
  pw_cache *cache = NULL;
  CHECK_OK(pw_cache_new(NULL, &cache));
  CHECK(cache != NULL);
  CHECK_OK(pw_cache_put(cache, "k", "{\"proxy_url\": \"http://h:1\"}"));
  pw_cache_free(cache);
  pw_cache_free(NULL);
}

int main(void) {
  version_matches_the_crate();
  status_values_are_stable();
  last_error_is_empty_until_a_failure_and_after_a_success();
  generate_cache_key_matches_upstream();
  put_get_delete_round_trip();
  put_many_stores_a_batch();
  an_expired_entry_is_not_found();
  clear_and_cleanup_count_keys();
  invalidate_by_health_evicts_at_the_threshold();
  statistics_are_json_with_the_upstream_keys();
  warm_and_export_round_trip();
  statuses_of_files_and_storage();
  crypto_error_for_a_bad_key();
  null_config_means_defaults();
  return pwt_finish("test_api");
}
