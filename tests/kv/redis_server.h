/* tests/kv/redis_server.h - a throwaway redis-server for check_kv and the kv bench.
 *
 * Starts `redis-server` on a free loopback port, in a temporary directory, without
 * persistence (--save '' --appendonly no), and stops it. The server is a child process
 * that dies with the thread that started it (PR_SET_PDEATHSIG), so a test killed by its
 * timeout leaves no server behind. Header-only: every function is static inline. */
#ifndef SYNCHRO_TESTS_KV_REDIS_SERVER_H
#define SYNCHRO_TESTS_KV_REDIS_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct redis_server_s {
  pid_t pid; /* 0: not running */
  int port;
  char dir[64]; /* the temporary directory ("" until the first start) */
} redis_server_t;

/* 1 when redis-server can be run (found in PATH). */
static inline int redis_server_available(void) {
  return system("command -v redis-server >/dev/null 2>&1") == 0;
}

/* A loopback port nobody listens on right now (the kernel's choice), or -1. */
static inline int redis_server_free_port(void) {
  struct sockaddr_in sin;
  socklen_t len = sizeof(sin);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

  if (fd < 0)
    return -1;
  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
      getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
    port = ntohs(sin.sin_port);
  close(fd);
  return port;
}

static inline void redis_server_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Sends one command on a fresh connection and checks the reply is not an error;
 * returns 0 or -1. */
static inline int redis_server_command(int port, const char *cmd) {
  struct timeval tv = {1, 0};
  redisContext *ctx = redisConnectWithTimeout("127.0.0.1", port, tv);
  redisReply *reply;
  int rc = -1;

  if (ctx == NULL || ctx->err) {
    if (ctx != NULL)
      redisFree(ctx);
    return -1;
  }
  reply = redisCommand(ctx, cmd);
  if (reply != NULL && reply->type != REDIS_REPLY_ERROR)
    rc = 0;
  if (reply != NULL)
    freeReplyObject(reply);
  redisFree(ctx);
  return rc;
}

/* Starts the server on `port` (0: a free one; the same port again after a kill).
 * Waits until it answers PING (5 s at most). Returns 0, or -1 (and *s is not running). */
static inline int redis_server_start(redis_server_t *s, int port) {
  for (int tries = 0; tries < 5; tries++) {
    char portstr[16], log[96];
    pid_t pid;
    int p = port != 0 ? port : redis_server_free_port();

    if (p <= 0)
      return -1;
    if (s->dir[0] == '\0') {
      snprintf(s->dir, sizeof(s->dir), "/tmp/kv-redis-XXXXXX");
      if (mkdtemp(s->dir) == NULL) {
        s->dir[0] = '\0';
        return -1;
      }
    }
    snprintf(portstr, sizeof(portstr), "%d", p);
    snprintf(log, sizeof(log), "%s/redis.log", s->dir);
    fflush(NULL);
    if ((pid = fork()) < 0)
      return -1;
    if (pid == 0) {
      int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
      }
      execlp("redis-server", "redis-server", "--port", portstr, "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", s->dir, "--daemonize", "no", "--logfile", "",
             (char *)NULL);
      _exit(127);
    }
    s->pid = pid;
    s->port = p;
    for (int i = 0; i < 500; i++) {
      int status;
      if (waitpid(pid, &status, WNOHANG) == pid) { /* exited: the port was taken? */
        s->pid = 0;
        break;
      }
      if (redis_server_command(p, "PING") == 0)
        return 0;
      redis_server_sleep_ms(10);
    }
    if (s->pid != 0) { /* never answered */
      kill(pid, SIGKILL);
      waitpid(pid, NULL, 0);
      s->pid = 0;
    }
    if (port != 0)
      redis_server_sleep_ms(100); /* a fixed port: wait and try again */
  }
  return -1;
}

/* Kills the server at once (SIGKILL: connections drop, nothing is flushed). */
static inline void redis_server_kill(redis_server_t *s) {
  if (s->pid > 0) {
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
  }
}

/* Stops the server and removes its directory. */
static inline void redis_server_stop(redis_server_t *s) {
  char path[96];

  redis_server_kill(s);
  if (s->dir[0] != '\0') {
    snprintf(path, sizeof(path), "%s/redis.log", s->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/dump.rdb", s->dir);
    unlink(path);
    rmdir(s->dir);
    s->dir[0] = '\0';
  }
}

#endif
