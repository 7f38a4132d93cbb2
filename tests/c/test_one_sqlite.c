/* test_one_sqlite.c - a C host that links -lsqlite3 and reads pwcache's databases itself.
 *
 * POSIX file locks belong to the process. libpwcache links the process's one SQLite, so when
 * this program closes its own connection to L2 or L3, SQLite knows pwcache still has the file
 * open: it keeps pwcache's locks and does not checkpoint and delete the WAL under it. (With a
 * second SQLite copy inside libpwcache, acknowledged puts never reached the file and deleted
 * rows came back.) Between writes and deletes this program opens, reads and closes both
 * databases, holds connections open across a sweep, and after each step has another process
 * (itself, run as `test_one_sqlite keys DB TABLE`) list the keys it sees. */
#include "pwtest.h"

#include <sqlite3.h>
#include <stdbool.h>

enum { ROUNDS = 4, PER_ROUND = 20 };

static char self_exe[4096];

/* `keys DB TABLE`: prints every key of TABLE, one a line, from a fresh process. */
static int list_keys(const char *db, const char *table) {
  sqlite3 *conn = NULL;
  if (sqlite3_open_v2(db, &conn, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    fprintf(stderr, "cannot open %s: %s\n", db, sqlite3_errmsg(conn));
    sqlite3_close(conn);
    return 2;
  }
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT key FROM %s", table);
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2(conn, sql, -1, &stmt, NULL);
  while (rc == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
    printf("%s\n", (const char *)sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(conn);
  return rc == SQLITE_OK ? 0 : 2;
}

/* Opens `db`, counts `table`'s rows, closes: the close is what dropped a second SQLite's locks. */
static void peek(const char *db, const char *table) {
  sqlite3 *conn = NULL;
  CHECK(sqlite3_open_v2(db, &conn, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
  char sql[128];
  snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", table);
  sqlite3_stmt *stmt = NULL;
  CHECK(sqlite3_prepare_v2(conn, sql, -1, &stmt, NULL) == SQLITE_OK);
  CHECK(sqlite3_step(stmt) == SQLITE_ROW);
  sqlite3_finalize(stmt);
  CHECK(sqlite3_close(conn) == SQLITE_OK);
}

static bool live[ROUNDS][PER_ROUND];

/* Another process sees exactly the live keys in `table` of `db`. */
static void expect_live(const char *db, const char *table, const char *step) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "'%s' keys '%s' %s", self_exe, db, table);
  FILE *p = popen(cmd, "r");
  CHECK(p != NULL);
  if (p == NULL) return;
  int seen = 0, expected = 0, unexpected = 0;
  char line[256];
  while (fgets(line, sizeof line, p)) {
    int r, i;
    if (sscanf(line, "r%d-%d", &r, &i) == 2 && r >= 0 && r < ROUNDS && i >= 0 && i < PER_ROUND &&
        live[r][i]) {
      seen++;
    } else {
      unexpected++;
      fprintf(stderr, "%s: %s holds %s", step, table, line);
    }
  }
  CHECK(pclose(p) == 0);
  for (int r = 0; r < ROUNDS; r++)
    for (int i = 0; i < PER_ROUND; i++) expected += live[r][i];
  if (seen != expected || unexpected != 0) {
    fprintf(stderr, "%s: another process sees %d of the %d live keys in %s, and %d others\n",
            step, seen, expected, table, unexpected);
  }
  CHECK(seen == expected);
  CHECK(unexpected == 0);
}

static void scenario(const char *backend) {
  const char *dir = NULL;
  char extra[64];
  snprintf(extra, sizeof extra, "\"l2_backend\": \"%s\"", backend);
  pw_cache *cache = pwt_cache(extra, &dir);
  bool sqlite_l2 = strcmp(backend, "sqlite") == 0;
  char l3[256], l2[256];
  snprintf(l3, sizeof l3, "%s/l3.db", dir);
  snprintf(l2, sizeof l2, "%s/l2/l2_cache.db", dir);
  memset(live, 0, sizeof live);

  for (int r = 0; r < ROUNDS; r++) {
    for (int i = 0; i < PER_ROUND; i++) {
      char key[32], entry[128];
      snprintf(key, sizeof key, "r%d-%d", r, i);
      snprintf(entry, sizeof entry, "{\"proxy_url\": \"http://10.%d.0.%d:8080\"}", r, i);
      CHECK_OK(pw_cache_put(cache, key, entry));
      live[r][i] = true;
      if (i % 5 == 0) {
        peek(l3, "cache_entries");
        if (sqlite_l2) peek(l2, "l2_cache");
      }
    }
    expect_live(l3, "cache_entries", "after puts");
    if (sqlite_l2) expect_live(l2, "l2_cache", "after puts");
    for (int i = 0; i < PER_ROUND; i += 2) {
      char key[32];
      snprintf(key, sizeof key, "r%d-%d", r, i);
      CHECK_OK(pw_cache_delete(cache, key));
      live[r][i] = false;
      if (i % 4 == 0) {
        peek(l3, "cache_entries");
        if (sqlite_l2) peek(l2, "l2_cache");
      }
    }
    expect_live(l3, "cache_entries", "after deletes");
    if (sqlite_l2) expect_live(l2, "l2_cache", "after deletes");
  }

  /* A sweep while this program holds connections to both databases. */
  for (int i = 0; i < 3; i++) {
    char key[32];
    snprintf(key, sizeof key, "expired-%d", i);
    CHECK_OK(pw_cache_put(cache, key, "{\"proxy_url\": \"http://10.9.0.1:8080\", \"ttl_seconds\": 0}"));
  }
  sqlite3 *held_l3 = NULL, *held_l2 = NULL;
  CHECK(sqlite3_open_v2(l3, &held_l3, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
  CHECK(sqlite3_exec(held_l3, "SELECT COUNT(*) FROM sqlite_master", NULL, NULL, NULL) == SQLITE_OK);
  if (sqlite_l2) CHECK(sqlite3_open_v2(l2, &held_l2, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
  uint64_t removed = 0;
  CHECK_OK(pw_cache_cleanup_expired(cache, &removed));
  CHECK(removed == 3);
  CHECK(sqlite3_close(held_l3) == SQLITE_OK);
  CHECK(sqlite3_close(held_l2) == SQLITE_OK); /* NULL is a no-op */
  expect_live(l3, "cache_entries", "after the sweep");
  if (sqlite_l2) expect_live(l2, "l2_cache", "after the sweep");

  char *stats = NULL;
  CHECK_OK(pw_cache_get_statistics(cache, &stats));
  CHECK_CONTAINS(stats, "\"l2_degraded\":false");
  CHECK_CONTAINS(stats, "\"l3_degraded\":false");
  pw_string_free(stats);
  pw_cache_free(cache);
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "keys") == 0) return list_keys(argv[2], argv[3]);
  ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
  if (n <= 0) {
    perror("readlink /proc/self/exe");
    return 2;
  }
  self_exe[n] = '\0';
  printf("SQLite %s\n", sqlite3_libversion());
  scenario("jsonl");
  scenario("sqlite");
  return pwt_finish("test_one_sqlite");
}
