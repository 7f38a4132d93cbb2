/* pwtest.h - the tiny helper of the C tests: checks that report the line and the library's
 * last error, a private temporary directory, and a configuration pointing into it. */
#ifndef PWTEST_H
#define PWTEST_H

#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pwcache.h"

static int pwt_failures = 0;

/* The temporary directories made by pwt_tempdir(), removed by pwt_finish(). */
static char pwt_dirs[64][32];
static int pwt_ndirs = 0;

#define CHECK(cond)                                                                     \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      fprintf(stderr, "%s:%d: CHECK(%s) failed; pw_last_error: \"%s\"\n", __FILE__,     \
              __LINE__, #cond, pw_last_error());                                        \
      pwt_failures++;                                                                   \
    }                                                                                   \
  } while (0)

/* The status of `call` is `expected`, and pw_last_error() is "" exactly when it is PW_OK. */
#define CHECK_STATUS(call, expected)                                                    \
  do {                                                                                  \
    pw_status pwt_got = (call);                                                         \
    if (pwt_got != (expected)) {                                                        \
      fprintf(stderr, "%s:%d: %s returned %d, expected %d (%s); pw_last_error: \"%s\"\n", \
              __FILE__, __LINE__, #call, (int)pwt_got, (int)(expected), #expected,      \
              pw_last_error());                                                         \
      pwt_failures++;                                                                   \
    } else if ((pwt_got == PW_OK) != (pw_last_error()[0] == '\0')) {                     \
      fprintf(stderr, "%s:%d: %s: pw_last_error is \"%s\" with status %d\n", __FILE__,  \
              __LINE__, #call, pw_last_error(), (int)pwt_got);                          \
      pwt_failures++;                                                                   \
    }                                                                                   \
  } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, PW_OK)

/* `haystack` contains `needle`. */
#define CHECK_CONTAINS(haystack, needle)                                                \
  do {                                                                                  \
    const char *pwt_h = (haystack);                                                     \
    if (pwt_h == NULL || strstr(pwt_h, (needle)) == NULL) {                             \
      fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__,     \
              pwt_h ? pwt_h : "(null)", (needle));                                      \
      pwt_failures++;                                                                   \
    }                                                                                   \
  } while (0)

static inline int pwt_finish(const char *name) {
  for (int i = 0; i < pwt_ndirs; i++) {
    char cmd[64];
    /* The length is checked, not assumed: with optimisation GCC bounds pwt_dirs[i] by the whole
       array and warns (-Wformat-truncation) unless the result of snprintf is looked at. */
    int n = snprintf(cmd, sizeof cmd, "rm -rf '%s'", pwt_dirs[i]);
    if (n < 0 || (size_t)n >= sizeof cmd || system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", pwt_dirs[i]);
  }
  if (pwt_failures) {
    fprintf(stderr, "%s: %d check(s) failed\n", name, pwt_failures);
    return 1;
  }
  printf("%s: all checks passed\n", name);
  return 0;
}

/* A new private temporary directory, removed by pwt_finish(). */
static inline const char *pwt_tempdir(void) {
  if (pwt_ndirs == 64) {
    fprintf(stderr, "too many temporary directories\n");
    exit(2);
  }
  char *dir = pwt_dirs[pwt_ndirs++];
  strcpy(dir, "/tmp/pwcache-ctest-XXXXXX");
  if (mkdtemp(dir) == NULL) {
    perror("mkdtemp");
    exit(2);
  }
  return dir;
}

/* `dir`/`name` in a static buffer (one of four, so a few can be alive at once). */
static inline const char *pwt_path(const char *dir, const char *name) {
  static char bufs[4][256];
  static int next = 0;
  char *buf = bufs[next++ % 4];
  snprintf(buf, 256, "%s/%s", dir, name);
  return buf;
}

/* A configuration with every tier under `dir`, plus `extra` JSON members (or ""). */
static inline const char *pwt_config(const char *dir, const char *extra) {
  static char buf[1024];
  snprintf(buf, sizeof buf,
           "{\"l2_cache_dir\": \"%s/l2\", \"l3_database_path\": \"%s/l3.db\"%s%s}", dir, dir,
           extra[0] ? ", " : "", extra);
  return buf;
}

/* A cache under a fresh temporary directory, whose path goes to *dir_out when not NULL. */
static inline pw_cache *pwt_cache(const char *extra, const char **dir_out) {
  const char *dir = pwt_tempdir();
  pw_cache *cache = NULL;
  pw_status status = pw_cache_new(pwt_config(dir, extra), &cache);
  if (status != PW_OK || cache == NULL) {
    fprintf(stderr, "pw_cache_new failed (%d): %s\n", (int)status, pw_last_error());
    exit(2);
  }
  if (dir_out) *dir_out = dir;
  return cache;
}

/* Writes `text` to `path`. */
static inline void pwt_write(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (!f) {
    perror(path);
    exit(2);
  }
  fputs(text, f);
  fclose(f);
}

/* The whole file at `path` (malloc'd), or NULL. */
static inline char *pwt_read(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  buf[got] = '\0';
  fclose(f);
  return buf;
}

#endif /* PWTEST_H */
