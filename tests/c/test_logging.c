/* test_logging.c - pw_set_logger: messages reach the callback (from any thread), the level
 * filter holds, NULL turns logging off, bad levels are refused, and no credential is ever in a
 * message. */
#include "pwtest.h"

#include <pthread.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int messages = 0;
static int by_level[6];
static int leaked = 0;
static int bad_level = 0;
static int foreign_thread = 0;
static pthread_t main_thread;

static const char *SECRETS[] = {"hunter2", "alice-user", "s3cr3t-url-pass", "url-user",
                                "ZmFrZS1rZXk"};

static void on_log(void *user_data, pw_log_level level, const char *message) {
  pthread_mutex_lock(&lock);
  CHECK(user_data == (void *)&messages);
  messages++;
  if (level >= PW_LOG_ERROR && level <= PW_LOG_TRACE) {
    by_level[level]++;
  } else {
    bad_level++;
  }
  if (!pthread_equal(pthread_self(), main_thread)) foreign_thread++;
  for (size_t i = 0; i < sizeof SECRETS / sizeof SECRETS[0]; i++) {
    if (strstr(message, SECRETS[i])) {
      fprintf(stderr, "credential in a log message: %s\n", message);
      leaked++;
    }
  }
  pthread_mutex_unlock(&lock);
}

static void reset(void) {
  pthread_mutex_lock(&lock);
  messages = 0;
  memset(by_level, 0, sizeof by_level);
  pthread_mutex_unlock(&lock);
}

/* Work that logs at several levels: tiers opening (info), a degraded tier (warn), warm
 * (info), sweeps (debug, on the sweeper's thread), with credentials everywhere. */
static void noisy_work(void) {
  const char *dir = pwt_tempdir();
  char config[1024];
  /* L3's path is a directory: it starts degraded, with a warning. */
  snprintf(config, sizeof config,
           "{\"l2_cache_dir\": \"%s/l2\", \"l3_database_path\": \"%s\"}", dir, dir);
  pw_cache *cache = NULL;
  CHECK_OK(pw_cache_new(config, &cache));
  CHECK_OK(pw_cache_put(cache, "k",
                        "{\"proxy_url\": \"http://10.0.0.1:80\","
                        " \"username\": \"alice-user\", \"password\": \"hunter2\"}"));
  CHECK_OK(pw_cache_put(cache, "u", "{\"proxy_url\": \"http://url-user:s3cr3t-url-pass@10.0.0.3:80\"}"));
  /* Credentials in the URL and in the fields that differ: refused, the message names neither. */
  CHECK_STATUS(pw_cache_put(cache, "both",
                            "{\"proxy_url\": \"http://url-user:s3cr3t-url-pass@10.0.0.1:80\","
                            " \"username\": \"alice-user\", \"password\": \"hunter2\"}"),
               PW_INVALID_ARGUMENT);
  CHECK(strstr(pw_last_error(), "hunter2") == NULL && strstr(pw_last_error(), "s3cr3t") == NULL);
  CHECK_OK(pw_cache_put(cache, "x", "{\"proxy_url\": \"http://url-user:s3cr3t-url-pass@h:1\","
                                    " \"ttl_seconds\": 0}"));
  const char *file = pwt_path(dir, "warm.jsonl");
  pwt_write(file, "{\"proxy_url\": \"http://url-user:s3cr3t-url-pass@10.0.0.2:80\","
                  " \"password\": \"hunter2\"}\n{broken hunter2\n");
  CHECK_OK(pw_cache_warm_from_file(cache, file, -1, NULL));
  pw_ttl *ttl = NULL;
  CHECK_OK(pw_ttl_new(cache, 0.01, &ttl));
  CHECK_OK(pw_ttl_start(ttl));
  struct timespec t = {0, 100 * 1000 * 1000};
  nanosleep(&t, NULL);
  pw_ttl_free(ttl);
  pw_cache_free(cache);

  /* A bad encryption key: an error message, and maybe a log line, without the key. */
  cache = NULL;
  CHECK_STATUS(pw_cache_new(pwt_config(dir, "\"encryption_key\": \"ZmFrZS1rZXk\""), &cache),
               PW_CRYPTO_ERROR);
  CHECK(strstr(pw_last_error(), "ZmFrZS1rZXk") == NULL);
}

int main(void) {
  main_thread = pthread_self();

  CHECK_STATUS(pw_set_logger(on_log, &messages, (pw_log_level)0), PW_INVALID_ARGUMENT);
  CHECK_CONTAINS(pw_last_error(), "max_level");
  CHECK_STATUS(pw_set_logger(on_log, &messages, (pw_log_level)6), PW_INVALID_ARGUMENT);
  CHECK_STATUS(pw_set_logger(on_log, &messages, (pw_log_level)-1), PW_INVALID_ARGUMENT);
  /* NULL turns logging off whatever the level. */
  CHECK_OK(pw_set_logger(NULL, NULL, (pw_log_level)42));

  /* Everything, at TRACE. */
  CHECK_OK(pw_set_logger(on_log, &messages, PW_LOG_TRACE));
  noisy_work();
  CHECK(messages > 0);
  CHECK(by_level[PW_LOG_WARN] > 0);
  CHECK(by_level[PW_LOG_INFO] > 0);
  CHECK(by_level[PW_LOG_DEBUG] > 0);
  CHECK(foreign_thread > 0); /* the sweeper's thread logged */
  CHECK(bad_level == 0);
  CHECK(leaked == 0);

  /* WARN and above only. */
  reset();
  CHECK_OK(pw_set_logger(on_log, &messages, PW_LOG_WARN));
  noisy_work();
  CHECK(by_level[PW_LOG_WARN] > 0);
  CHECK(by_level[PW_LOG_INFO] == 0 && by_level[PW_LOG_DEBUG] == 0 && by_level[PW_LOG_TRACE] == 0);

  /* Off. */
  reset();
  CHECK_OK(pw_set_logger(NULL, NULL, PW_LOG_TRACE));
  noisy_work();
  CHECK(messages == 0);
  CHECK(leaked == 0);
  return pwt_finish("test_logging");
}
