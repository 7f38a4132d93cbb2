/* test_bad_input.c - bad input gets a status and a message, never a crash; out-parameters are
 * NULL/0/false on every failure. */
#include "pwtest.h"

#include <math.h>

static const char BAD_UTF8[] = {'k', (char)0xff, (char)0xfe, 0};
static const char BAD_UTF8_JSON[] = {'{', '"', 'p', (char)0xc3, '"', ':', '1', '}', 0};
static const char *ENTRY = "{\"proxy_url\": \"http://h:1\"}";

#define SENTINEL_STR ((char *)"sentinel")

static void null_pointers(pw_cache *cache) {
  char *s = SENTINEL_STR;
  uint64_t n = 7;
  bool b = true;
  pw_cache *c = (pw_cache *)&s;
  pw_ttl *t = (pw_ttl *)&s;

  CHECK_STATUS(pw_cache_new(NULL, NULL), PW_INVALID_ARGUMENT);
  CHECK_CONTAINS(pw_last_error(), "out_cache");
  CHECK_STATUS(pw_cache_new("{\"bogus\": 1}", NULL), PW_INVALID_ARGUMENT);

  CHECK_STATUS(pw_cache_put(NULL, "k", ENTRY), PW_INVALID_ARGUMENT);
  CHECK_CONTAINS(pw_last_error(), "cache");
  CHECK_STATUS(pw_cache_put(cache, NULL, ENTRY), PW_INVALID_ARGUMENT);
  CHECK_CONTAINS(pw_last_error(), "key");
  CHECK_STATUS(pw_cache_put(cache, "k", NULL), PW_INVALID_ARGUMENT);
  CHECK_CONTAINS(pw_last_error(), "entry_json");

  n = 7;
  CHECK_STATUS(pw_cache_put_many(NULL, "[]", &n), PW_INVALID_ARGUMENT);
  CHECK_CONTAINS(pw_last_error(), "cache");
  CHECK(n == 0);
  n = 7;
  CHECK_STATUS(pw_cache_put_many(cache, NULL, &n), PW_INVALID_ARGUMENT);
  CHECK_CONTAINS(pw_last_error(), "entries_json");
  CHECK(n == 0);
  CHECK_STATUS(pw_cache_put_many(NULL, NULL, NULL), PW_INVALID_ARGUMENT);

  CHECK_STATUS(pw_cache_get(NULL, "k", &s), PW_INVALID_ARGUMENT);
  CHECK(s == NULL);
  s = SENTINEL_STR;
  CHECK_STATUS(pw_cache_get(cache, NULL, &s), PW_INVALID_ARGUMENT);
  CHECK(s == NULL);
  CHECK_STATUS(pw_cache_get(cache, "k", NULL), PW_INVALID_ARGUMENT);
  CHECK_CONTAINS(pw_last_error(), "out_entry_json");

  CHECK_STATUS(pw_cache_delete(NULL, "k"), PW_INVALID_ARGUMENT);
  CHECK_STATUS(pw_cache_delete(cache, NULL), PW_INVALID_ARGUMENT);

  CHECK_STATUS(pw_cache_clear(NULL, &n), PW_INVALID_ARGUMENT);
  CHECK(n == 0);
  CHECK_STATUS(pw_cache_clear(NULL, NULL), PW_INVALID_ARGUMENT);

  CHECK_STATUS(pw_cache_invalidate_by_health(NULL, "k", &b), PW_INVALID_ARGUMENT);
  CHECK(!b);
  b = true;
  CHECK_STATUS(pw_cache_invalidate_by_health(cache, NULL, &b), PW_INVALID_ARGUMENT);
  CHECK(!b);

  s = SENTINEL_STR;
  CHECK_STATUS(pw_cache_get_statistics(NULL, &s), PW_INVALID_ARGUMENT);
  CHECK(s == NULL);
  CHECK_STATUS(pw_cache_get_statistics(cache, NULL), PW_INVALID_ARGUMENT);

  s = SENTINEL_STR;
  CHECK_STATUS(pw_cache_warm_from_file(NULL, "/tmp/x.json", -1, &s), PW_INVALID_ARGUMENT);
  CHECK(s == NULL);
  s = SENTINEL_STR;
  CHECK_STATUS(pw_cache_warm_from_file(cache, NULL, -1, &s), PW_INVALID_ARGUMENT);
  CHECK(s == NULL);

  s = SENTINEL_STR;
  CHECK_STATUS(pw_cache_export_to_file(NULL, "/tmp/x.jsonl", NULL, &s), PW_INVALID_ARGUMENT);
  CHECK(s == NULL);
  s = SENTINEL_STR;
  CHECK_STATUS(pw_cache_export_to_file(cache, NULL, NULL, &s), PW_INVALID_ARGUMENT);
  CHECK(s == NULL);

  n = 7;
  CHECK_STATUS(pw_cache_cleanup_expired(NULL, &n), PW_INVALID_ARGUMENT);
  CHECK(n == 0);

  s = SENTINEL_STR;
  CHECK_STATUS(pw_generate_cache_key(NULL, &s), PW_INVALID_ARGUMENT);
  CHECK(s == NULL);
  CHECK_STATUS(pw_generate_cache_key("http://h:1", NULL), PW_INVALID_ARGUMENT);

  CHECK_STATUS(pw_ttl_new(NULL, 1.0, &t), PW_INVALID_ARGUMENT);
  CHECK(t == NULL);
  CHECK_STATUS(pw_ttl_new(cache, 1.0, NULL), PW_INVALID_ARGUMENT);
  CHECK_STATUS(pw_ttl_start(NULL), PW_INVALID_ARGUMENT);
  CHECK_STATUS(pw_ttl_stop(NULL), PW_INVALID_ARGUMENT);
  CHECK(!pw_ttl_is_running(NULL));
  pw_ttl_free(NULL);
  pw_cache_free(NULL);
  pw_string_free(NULL);
  (void)c;
}

static void invalid_utf8_and_empty_strings(pw_cache *cache) {
  char *s = SENTINEL_STR;
  CHECK_STATUS(pw_cache_put(cache, BAD_UTF8, ENTRY), PW_INVALID_ARGUMENT);
  CHECK_CONTAINS(pw_last_error(), "UTF-8");
  CHECK_STATUS(pw_cache_put(cache, "", ENTRY), PW_INVALID_ARGUMENT);
  CHECK_CONTAINS(pw_last_error(), "empty");
  CHECK_STATUS(pw_cache_get(cache, BAD_UTF8, &s), PW_INVALID_ARGUMENT);
  CHECK(s == NULL);
  CHECK_STATUS(pw_cache_get(cache, "", &s), PW_INVALID_ARGUMENT);
  CHECK_STATUS(pw_cache_delete(cache, BAD_UTF8), PW_INVALID_ARGUMENT);
  CHECK_STATUS(pw_cache_delete(cache, ""), PW_INVALID_ARGUMENT);
  CHECK_STATUS(pw_cache_invalidate_by_health(cache, "", NULL), PW_INVALID_ARGUMENT);
  CHECK_STATUS(pw_cache_invalidate_by_health(cache, BAD_UTF8, NULL), PW_INVALID_ARGUMENT);
  CHECK_STATUS(pw_cache_warm_from_file(cache, "", -1, NULL), PW_INVALID_ARGUMENT);
  CHECK_STATUS(pw_cache_warm_from_file(cache, BAD_UTF8, -1, NULL), PW_INVALID_ARGUMENT);
  CHECK_STATUS(pw_cache_export_to_file(cache, "", NULL, NULL), PW_INVALID_ARGUMENT);
  CHECK_STATUS(pw_cache_export_to_file(cache, BAD_UTF8, NULL, NULL), PW_INVALID_ARGUMENT);
  s = SENTINEL_STR;
  CHECK_STATUS(pw_generate_cache_key(BAD_UTF8, &s), PW_INVALID_ARGUMENT);
  CHECK(s == NULL);
  CHECK_STATUS(pw_generate_cache_key("", &s), PW_INVALID_ARGUMENT);

  /* JSON text that is not UTF-8 is PW_INVALID_JSON. */
  CHECK_STATUS(pw_cache_put(cache, "k", BAD_UTF8_JSON), PW_INVALID_JSON);
  CHECK_STATUS(pw_cache_put_many(cache, BAD_UTF8_JSON, NULL), PW_INVALID_JSON);
  pw_cache *c = NULL;
  CHECK_STATUS(pw_cache_new(BAD_UTF8_JSON, &c), PW_INVALID_JSON);
  CHECK(c == NULL);
  CHECK_STATUS(pw_cache_export_to_file(cache, "/tmp/pwcache-never.jsonl", BAD_UTF8_JSON, NULL),
               PW_INVALID_JSON);
}

static void malformed_json_and_unknown_keys(pw_cache *cache) {
  const char *dir = pwt_tempdir();
  pw_cache *c = (pw_cache *)&dir;
  CHECK_STATUS(pw_cache_new("", &c), PW_INVALID_JSON);
  CHECK(c == NULL);
  CHECK_CONTAINS(pw_last_error(), "empty");
  CHECK_STATUS(pw_cache_new("{", &c), PW_INVALID_JSON);
  CHECK_STATUS(pw_cache_new("[]", &c), PW_INVALID_JSON);
  CHECK_STATUS(pw_cache_new(pwt_config(dir, "\"no_such_option\": 1"), &c), PW_INVALID_JSON);
  CHECK_CONTAINS(pw_last_error(), "no_such_option");
  CHECK_STATUS(pw_cache_new(pwt_config(dir, "\"l1_config\": {\"enabled\": true, \"size\": 3}"), &c),
               PW_INVALID_JSON);
  CHECK_STATUS(pw_cache_new(pwt_config(dir, "\"default_ttl_seconds\": 0"), &c), PW_INVALID_JSON);
  CHECK_STATUS(pw_cache_new(pwt_config(dir, "\"default_ttl_seconds\": \"1\""), &c),
               PW_INVALID_JSON);
  CHECK(c == NULL);

  CHECK_STATUS(pw_cache_put(cache, "k", "not json"), PW_INVALID_JSON);
  CHECK_STATUS(pw_cache_put(cache, "k", ""), PW_INVALID_JSON);
  CHECK_STATUS(pw_cache_put(cache, "k", "{}"), PW_INVALID_JSON);
  CHECK_CONTAINS(pw_last_error(), "proxy_url");
  CHECK_STATUS(pw_cache_put(cache, "k", "{\"proxy_url\": \"http://h:1\", \"colour\": 1}"),
               PW_INVALID_JSON);
  CHECK_CONTAINS(pw_last_error(), "colour");
  CHECK_STATUS(pw_cache_put(cache, "k", "{\"proxy_url\": \"http://h:1\", \"ttl_seconds\": -1}"),
               PW_INVALID_JSON);
  CHECK_STATUS(pw_cache_put(cache, "k", "{\"proxy_url\": \"\"}"), PW_INVALID_JSON);
  char *s = NULL;
  CHECK_STATUS(pw_cache_get(cache, "k", &s), PW_NOT_FOUND); /* nothing was stored */

  char *counts = SENTINEL_STR;
  const char *out = pwt_path(dir, "out.jsonl");
  CHECK_STATUS(pw_cache_export_to_file(cache, out, "{\"include_credentials\": 1}", &counts),
               PW_INVALID_JSON);
  CHECK(counts == NULL);
  CHECK_STATUS(pw_cache_export_to_file(cache, out, "{\"include_passwords\": true}", NULL),
               PW_INVALID_JSON);
  CHECK_CONTAINS(pw_last_error(), "include_passwords");
  CHECK_STATUS(pw_cache_export_to_file(cache, out, "[true]", NULL), PW_INVALID_JSON);
  CHECK_STATUS(pw_cache_export_to_file(cache, out, "", NULL), PW_INVALID_JSON);
  CHECK(access(out, F_OK) != 0); /* nothing written */
}

static void put_many_rejects_bad_batches(pw_cache *cache) {
  /* Not JSON, not an array. */
  const char *not_arrays[] = {"", "[", "not json", "{}", "null", "3",
                              "{\"key\": \"k\", \"proxy_url\": \"http://h:1\"}", "[] []"};
  for (size_t i = 0; i < sizeof not_arrays / sizeof not_arrays[0]; i++) {
    uint64_t n = 7;
    CHECK_STATUS(pw_cache_put_many(cache, not_arrays[i], &n), PW_INVALID_JSON);
    CHECK(n == 0);
    CHECK(pw_last_error()[0] != '\0');
  }
  CHECK_STATUS(pw_cache_put_many(cache, "{}", NULL), PW_INVALID_JSON);
  CHECK_CONTAINS(pw_last_error(), "array");

  /* One invalid item rejects the whole batch; the message names its index and field. */
  struct {
    const char *json, *index, *field;
  } items[] = {
      {"[{\"key\": \"m0\", \"proxy_url\": \"http://h:1\"}, {\"proxy_url\": \"http://h:2\"}]",
       "item 1", "key"},
      {"[{\"key\": \"m0\", \"proxy_url\": \"http://h:1\"}, {\"key\": \"\", \"proxy_url\": \"x\"}]",
       "item 1", "key"},
      {"[{\"key\": \"m0\", \"proxy_url\": \"http://h:1\"}, {\"key\": \"m1\"}]", "item 1",
       "proxy_url"},
      {"[{\"key\": \"m0\", \"proxy_url\": \"http://h:1\"}, {\"key\": \"m1\", \"proxy_url\": \"x\"},"
       " {\"key\": \"m2\", \"proxy_url\": \"x\", \"colour\": 1}]",
       "item 2", "colour"},
      {"[{\"key\": \"m0\", \"proxy_url\": \"http://h:1\", \"ttl_seconds\": -1}]", "item 0",
       "ttl_seconds"},
      {"[{\"key\": \"m0\", \"proxy_url\": \"http://h:1\"}, 42]", "item 1", "object"},
      {"[{\"key\": \"m0\", \"proxy_url\": \"http://h:1\", \"password\": 12345}]", "item 0",
       "password"},
  };
  for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
    uint64_t n = 7;
    CHECK_STATUS(pw_cache_put_many(cache, items[i].json, &n), PW_INVALID_JSON);
    CHECK(n == 0);
    CHECK_CONTAINS(pw_last_error(), items[i].index);
    CHECK_CONTAINS(pw_last_error(), items[i].field);
  }
  CHECK(strstr(pw_last_error(), "12345") == NULL); /* a credential is never quoted */
  char *s = SENTINEL_STR;
  CHECK_STATUS(pw_cache_get(cache, "m0", &s), PW_NOT_FOUND); /* nothing was stored */
  CHECK(s == NULL);
}

static void bad_intervals_and_levels(pw_cache *cache) {
  pw_ttl *t = (pw_ttl *)&t;
  const double bad[] = {0.0, -1.0, INFINITY, -INFINITY, NAN, 1e300};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    t = (pw_ttl *)&t;
    CHECK_STATUS(pw_ttl_new(cache, bad[i], &t), PW_INVALID_ARGUMENT);
    CHECK(t == NULL);
  }
}

int main(void) {
  pw_cache *cache = pwt_cache("", NULL);
  null_pointers(cache);
  invalid_utf8_and_empty_strings(cache);
  malformed_json_and_unknown_keys(cache);
  put_many_rejects_bad_batches(cache);
  bad_intervals_and_levels(cache);
  pw_cache_free(cache);
  return pwt_finish("test_bad_input");
}
