/*
 * agentctl-supervise: the detached supervisor of one run, in C. It does what SUPERVISOR_SCRIPT
 * in src/core/spawn/launch.ts does (the comment there gives the reason for every rule), without
 * the shell's execs of setsid and sleep and without its subshells: the watchdog and the log
 * capper are deadlines in this process's own wait, not processes.
 *
 * Run as `agentctl-supervise -s RUN_ID`, already its own session leader, with fd 1 and 2 the
 * run's log and fd 3 the report pipe; fd 0 is not read. Its parameters are the AGENTCTL_SUP_*
 * variables, removed from the environment before anything starts. A parameter missing or
 * malformed: one line on stderr, exit 2, nothing started.
 *
 * What differs from the script, on purpose:
 * - The child gets every signal's default disposition and an empty mask (dash started its
 *   background job with SIGINT and SIGQUIT ignored).
 * - caplog caps only the file that was its fd 1 at the start (same device and inode, one
 *   link, ours), checks it before opening it, and truncates through the descriptor it checked;
 *   it copies at most log_max bytes.
 * - The watchdog's _end-run is never reaped before the usage line is read, so its CPU never
 *   counts as the child's (dash reaps any child that ends, and an _end-run that ended before
 *   the child did counted).
 * Linux only; C11 with POSIX/GNU, glibc or musl.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if !defined(SYS_close_range) && !defined(__alpha__)
#define SYS_close_range 436
#endif

#define ME "agentctl-supervise"
#define NS 1000000000LL
#define COPY_BUF (64 * 1024)
#define MAX_ARGC 100000
/* a sleep or timeout past this (about 31 years) is never */
#define FOREVER_SEC 1e9

typedef long long ns_t;

static const char *runid, *exitfile, *marker, *childfile, *name, *node, *bin, *statedir, *grace, *logpath, *config, *home;
static char *prevtmp, *prevpath, *bellpath;
static char **cargv;
static double timeout;
static long long logmax;
static int fleetsync, restart;
static mode_t umask0;
/* the log as fd 1 was at the start (the file agentctl opened for the child): the only file capped */
static dev_t log_dev;
static ino_t log_ino;
static int have_log;
static sigset_t chld;

/* One line on stderr in one write (the log before the supervisor lets go of it). */
static void say(const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  while (write(2, buf, (size_t)n) < 0 && errno == EINTR) {
  }
}

#define fail(...) (say(ME ": " __VA_ARGS__), exit(2))

static ssize_t write1(int fd, const void *b, size_t n) {
  ssize_t r;
  do r = write(fd, b, n);
  while (r < 0 && errno == EINTR);
  return r;
}

static int write_all(int fd, const char *b, size_t n) {
  while (n > 0) {
    ssize_t w = write1(fd, b, n);
    if (w <= 0) return -1;
    b += w;
    n -= (size_t)w;
  }
  return 0;
}

static ns_t now_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
  return (ns_t)ts.tv_sec * NS + ts.tv_nsec;
}

/* Sleep until `sec` seconds from now, through any interruption. */
static void sleep_sec(double sec) {
  if (!(sec > 0)) return;
  if (sec > FOREVER_SEC) sec = FOREVER_SEC;
  ns_t at = now_ns() + (ns_t)(sec * NS);
  struct timespec ts = {.tv_sec = at / NS, .tv_nsec = at % NS};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

static pid_t wait_for(pid_t pid, int *st, int flags) {
  pid_t r;
  do r = waitpid(pid, st, flags);
  while (r < 0 && errno == EINTR);
  return r;
}

/* Close every fd from `lo` up: close_range, else what /proc/self/fd lists, else all numbers. */
static void close_from(int lo) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, (unsigned)lo, ~0U, 0) == 0) return;
#endif
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      char *end;
      long fd = strtol(e->d_name, &end, 10);
      if (*end == '\0' && end != e->d_name && fd >= lo && fd != dirfd(d)) close((int)fd);
    }
    closedir(d);
    return;
  }
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536) max = 65536;
  for (long fd = lo; fd < max; fd++) close((int)fd);
}

static int open_null(int flags) {
  int fd;
  do fd = open("/dev/null", flags | O_CLOEXEC | O_NOCTTY);
  while (fd < 0 && errno == EINTR);
  return fd;
}

/* In a forked child, before its exec: default signals, empty mask, the caller's umask. */
static void child_reset(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  for (int s = 1; s < NSIG; s++)
    if (s != SIGKILL && s != SIGSTOP) sigaction(s, &sa, NULL); /* fails only for the libc's own */
  sigset_t none;
  sigemptyset(&none);
  if (sigprocmask(SIG_SETMASK, &none, NULL) != 0) _exit(1);
  umask(umask0);
}

/* `put`: write `content` and a newline, in one write, to a new 0600 file where nothing is. */
static void put(const char *path, const char *content) {
  struct stat st;
  if (lstat(path, &st) == 0) return;
  char buf[4096];
  int n = snprintf(buf, sizeof buf, "%s\n", content);
  if (n < 0 || (size_t)n >= sizeof buf) return;
  int fd;
  do fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return;
  if (write1(fd, buf, (size_t)n) < 0) {
    /* as the script's printf: a failed write leaves what it left */
  }
  close(fd);
}

/* Copy [off, EOF) of `from`, at most `max` bytes, to `to`. 0 when all went. */
static int copy_tail(int from, int to, off_t off, long long max) {
  char *buf = mmap(NULL, COPY_BUF, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) return -1;
  int rc = 0;
  while (max > 0) {
    ssize_t r = pread(from, buf, max < COPY_BUF ? (size_t)max : COPY_BUF, off);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) rc = -1;
    if (r <= 0) break;
    if (write_all(to, buf, (size_t)r) != 0) {
      rc = -1;
      break;
    }
    off += r;
    max -= r;
  }
  munmap(buf, COPY_BUF);
  return rc;
}

/*
 * `caplog`: past log_max bytes, the newest half goes to <log>.prev (written new, renamed into
 * place) and the log is emptied. Returns 1 when it was past the cap (size is then 0), else 0
 * with `*size` the log's size (0 when it is not a regular file of ours).
 */
static int caplog(long long *size) {
  *size = 0;
  struct stat st;
  /* looked at before it is opened: nothing but the child's log file (a FIFO or a device
   * planted at its name is never opened), a plain file of ours with one name */
  if (!have_log || lstat(logpath, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != log_dev || st.st_ino != log_ino || st.st_nlink != 1 || st.st_uid != geteuid())
    return 0;
  int fd;
  do fd = open(logpath, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return 0;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != log_dev || st.st_ino != log_ino || st.st_uid != geteuid()) {
    close(fd);
    return 0;
  }
  if ((long long)st.st_size <= logmax) {
    *size = (long long)st.st_size;
    close(fd);
    return 0;
  }
  long long keep = logmax / 2;
  if (unlink(prevtmp) != 0 && errno != ENOENT) {
    /* the open below says whether the name is free */
  }
  int out;
  do out = open(prevtmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
  while (out < 0 && errno == EINTR);
  if (out >= 0) {
    int ok = copy_tail(fd, out, (off_t)(st.st_size - keep), logmax) == 0;
    if (close(out) != 0) ok = 0;
    if (ok && rename(prevtmp, prevpath) == 0) {
      if (ftruncate(fd, 0) != 0) {
        /* the log stays as it was; the next look tries again */
      }
    } else if (unlink(prevtmp) != 0) {
      /* gone already */
    }
  }
  close(fd);
  return 1;
}

/* The run's own command: its own session, AGENTCTL_RUN_ID and AGENTCTL_NAME, fds 0-2 only. */
static pid_t start_child(void) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  child_reset();
  if (setsid() < 0) {
    say(ME ": setsid: %s", strerror(errno));
    _exit(1);
  }
  if (setenv("AGENTCTL_RUN_ID", runid, 1) != 0 || setenv("AGENTCTL_NAME", name, 1) != 0) {
    say(ME ": %s", strerror(errno));
    _exit(1);
  }
  int null = open_null(O_RDONLY);
  if (null < 0 || dup2(null, 0) < 0) {
    say(ME ": /dev/null: %s", strerror(errno));
    _exit(2);
  }
  close_from(3);
  execvp(cargv[0], cargv);
  int e = errno;
  if (e == ENOENT) say(ME ": %s: not found", cargv[0]);
  else say(ME ": %s: %s", cargv[0], strerror(e));
  _exit(e == ENOENT ? 127 : 126);
}

/*
 * An agentctl command (`node bin --state-dir DIR [--config FILE] args...`), from the spawner's
 * folder (else /), stdin and stderr /dev/null, stdout `out` (-1: /dev/null). Not waited for.
 */
static pid_t agentctl(const char *const *args, int out) {
  const char *argv[16];
  int n = 0;
  argv[n++] = node;
  argv[n++] = bin;
  argv[n++] = "--state-dir";
  argv[n++] = statedir;
  if (config[0] != '\0') {
    argv[n++] = "--config";
    argv[n++] = config;
  }
  while (*args != NULL && n < 15) argv[n++] = *args++;
  argv[n] = NULL;
  pid_t pid = fork();
  if (pid != 0) return pid;
  child_reset();
  int null = open_null(O_RDWR);
  if (null < 0 || dup2(null, 0) < 0 || dup2(out >= 0 ? out : null, 1) < 0 || dup2(null, 2) < 0) _exit(1);
  close_from(3);
  if (chdir(home) != 0 && chdir("/") != 0) _exit(1);
  execv(node, (char *const *)argv);
  _exit(errno == ENOENT ? 127 : 126);
}

/* sh's `$?` of `wait`. */
static int shell_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 127;
}

/*
 * Wait for the child, firing the watchdog and running the capper on their deadlines; the
 * child's status as sh's `$?`. `*endrun` is the watchdog's _end-run, if it was started.
 */
static int supervise(pid_t child, ns_t start, pid_t *endrun) {
  int dog = timeout > 0 && timeout <= FOREVER_SEC;
  ns_t dog_at = start + (ns_t)(timeout * NS), cap_at = start + NS;
  long long every = 1, last = 0, size;
  for (;;) {
    int st;
    pid_t r = wait_for(child, &st, WNOHANG);
    if (r == child) return shell_status(st);
    if (r < 0) return 127; /* not our child: cannot happen while SIGCHLD is not ignored */
    ns_t now = now_ns();
    if (dog && now >= dog_at) {
      dog = 0;
      put(marker, "");
      const char *args[] = {"--quiet", "_end-run", runid, "--grace", grace, NULL};
      *endrun = agentctl(args, -1);
    }
    if (logmax > 0 && now >= cap_at) {
      if (caplog(&size)) every = 1;
      else if ((size - last) * 4 < logmax - size) every = every >= 16 ? every : every * 2;
      else every = 1;
      last = size;
      cap_at = now_ns() + every * NS;
    }
    ns_t next = logmax > 0 ? cap_at : -1;
    if (dog && (next < 0 || dog_at < next)) next = dog_at;
    struct timespec ts, *tsp = NULL;
    if (next >= 0) {
      ns_t left = next - now_ns();
      if (left < 0) left = 0;
      ts.tv_sec = left / NS;
      ts.tv_nsec = left % NS;
      tsp = &ts;
    }
    if (sigtimedwait(&chld, NULL, tsp) < 0 && errno != EAGAIN && errno != EINTR) sleep_sec(0.1);
  }
}

/* The first line of our /proc/self/stat, as `read -r` leaves it; "" when it cannot be read. */
static void read_usage(char *out, size_t cap) {
  out[0] = '\0';
  int fd;
  do fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC | O_NOCTTY);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return;
  size_t n = 0;
  while (n < cap - 1) {
    ssize_t r = read(fd, out + n, cap - 1 - n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (size_t)r;
  }
  close(fd);
  out[n] = '\0';
  char *nl = memchr(out, '\n', n);
  if (nl == NULL) {
    out[0] = '\0';
    return;
  }
  *nl = '\0';
  while (nl > out && (nl[-1] == ' ' || nl[-1] == '\t')) *--nl = '\0';
  size_t lead = strspn(out, " \t");
  memmove(out, out + lead, strlen(out + lead) + 1);
}

/* Ask `agentctl _restart RUN_ID` what to do until it says anything but `sleep S`. */
static void restart_loop(void) {
  int fails = 0;
  for (;;) {
    char reply[512];
    size_t n = 0;
    int big = 0, rc = -1, p[2];
    if (pipe2(p, O_CLOEXEC) == 0) {
      const char *args[] = {"_restart", runid, NULL};
      pid_t pid = agentctl(args, p[1]);
      close(p[1]);
      for (;;) {
        char *at = n < sizeof reply - 1 ? reply + n : NULL, sink[256];
        ssize_t r = read(p[0], at ? at : sink, at ? sizeof reply - 1 - n : sizeof sink);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (at) n += (size_t)r;
        else big = 1;
      }
      close(p[0]);
      int st;
      if (pid > 0 && wait_for(pid, &st, 0) == pid && WIFEXITED(st)) rc = WEXITSTATUS(st);
    }
    if (rc != 0) {
      if (++fails < 4) {
        sleep_sec(5);
        continue;
      }
      return;
    }
    fails = 0;
    while (n > 0 && reply[n - 1] == '\n') n--;
    reply[n] = '\0';
    if (big || n <= 6 || memcmp(reply, "sleep ", 6) != 0) return;
    const char *s = reply + 6;
    if (strspn(s, "0123456789.") != n - 6) return;
    char *end;
    double sec = strtod(s, &end);
    if (end == s || *end != '\0') return;
    sleep_sec(sec);
  }
}

static char *param(const char *key) {
  char var[64];
  snprintf(var, sizeof var, "AGENTCTL_SUP_%s", key);
  const char *v = getenv(var);
  if (v == NULL) fail("%s is not set", var);
  char *copy = strdup(v);
  if (copy == NULL) fail("out of memory");
  return copy;
}

static int digits(const char *s) { return s[0] != '\0' && strspn(s, "0123456789") == strlen(s); }

static char *join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *s = malloc(la + lb + 1);
  if (s == NULL) fail("out of memory");
  memcpy(s, a, la);
  memcpy(s + la, b, lb + 1);
  return s;
}

static const char *const KEYS[] = {"EXIT", "MARKER", "CHILD", "TIMEOUT", "NAME", "NODE", "BIN", "STATEDIR", "GRACE", "ARGC", "LOG", "LOGMAX", "FLEETSYNC", "CONFIG", "RESTART", "HOME"};

/* Read every parameter, check them, then take them all out of the environment. */
static void read_params(int argc, char **argv) {
  if (argc != 3 || strcmp(argv[1], "-s") != 0 || argv[2][0] == '\0' || strlen(argv[2]) > 256) fail("usage: " ME " -s RUN_ID");
  runid = argv[2];
  exitfile = param("EXIT");
  marker = param("MARKER");
  childfile = param("CHILD");
  char *t = param("TIMEOUT");
  name = param("NAME");
  node = param("NODE");
  bin = param("BIN");
  statedir = param("STATEDIR");
  grace = param("GRACE");
  char *c = param("ARGC");
  logpath = param("LOG");
  char *m = param("LOGMAX");
  fleetsync = strcmp(param("FLEETSYNC"), "1") == 0;
  config = param("CONFIG");
  restart = strcmp(param("RESTART"), "1") == 0;
  home = param("HOME");

  char *end;
  timeout = strtod(t, &end);
  if (strspn(t, "0123456789.") == 0 || *end != '\0' || isnan(timeout) || timeout < 0) fail("AGENTCTL_SUP_TIMEOUT is not a number of seconds");
  errno = 0;
  logmax = strtoll(m, &end, 10);
  if (!digits(m) || errno != 0 || logmax > LLONG_MAX / 8) fail("AGENTCTL_SUP_LOGMAX is not a number of bytes");
  errno = 0;
  long n = strtol(c, &end, 10);
  if (!digits(c) || errno != 0 || n < 1 || n > MAX_ARGC) fail("AGENTCTL_SUP_ARGC is not a number of arguments");
  if (!exitfile[0] || !marker[0] || !childfile[0] || !bin[0] || !statedir[0] || (logmax > 0 && !logpath[0])) fail("a path in AGENTCTL_SUP_* is empty");
  if (node[0] != '/') fail("AGENTCTL_SUP_NODE is not an absolute path");

  cargv = calloc((size_t)n + 1, sizeof *cargv);
  if (cargv == NULL) fail("out of memory");
  for (long i = 0; i < n; i++) {
    char key[32];
    snprintf(key, sizeof key, "ARG_%ld", i);
    cargv[i] = param(key);
  }
  for (long i = 0; i < n; i++) {
    char var[48];
    snprintf(var, sizeof var, "AGENTCTL_SUP_ARG_%ld", i);
    if (unsetenv(var) != 0) fail("unsetenv: %s", strerror(errno));
  }
  for (size_t i = 0; i < sizeof KEYS / sizeof *KEYS; i++) {
    char var[48];
    snprintf(var, sizeof var, "AGENTCTL_SUP_%s", KEYS[i]);
    if (unsetenv(var) != 0) fail("unsetenv: %s", strerror(errno));
  }
  char pid[32];
  snprintf(pid, sizeof pid, ".prev.%ld", (long)getpid());
  prevtmp = join(logpath, pid);
  prevpath = join(logpath, ".prev");
  bellpath = join(statedir, "/slots.bell");
}

/* Signals as the supervisor wants them: SIGPIPE ignored, SIGCHLD blocked (it is waited for
 * with sigtimedwait), TERM, INT and HUP end it. */
static void set_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = SIG_IGN;
  if (sigaction(SIGPIPE, &sa, NULL) != 0) fail("sigaction: %s", strerror(errno));
  sa.sa_handler = SIG_DFL;
  const int dfl[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};
  for (size_t i = 0; i < sizeof dfl / sizeof *dfl; i++)
    if (sigaction(dfl[i], &sa, NULL) != 0) fail("sigaction: %s", strerror(errno));
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (sigprocmask(SIG_SETMASK, &chld, NULL) != 0) fail("sigprocmask: %s", strerror(errno));
}

int main(int argc, char **argv) {
  /* fds 0-2 always open (on /dev/null where closed, inherited like any standard fd), so
   * nothing opened later takes their numbers */
  for (int fd = 0; fd <= 2; fd++)
    if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR | O_NOCTTY) != fd) return 2;
  int report = fcntl(3, F_GETFD) >= 0;
  if (report && fcntl(3, F_SETFD, FD_CLOEXEC) != 0) report = 0;
  close_from(4);
  set_signals();
  read_params(argc, argv);
  umask0 = umask(077);

  pid_t child = start_child();
  if (child < 0) fail("fork: %s", strerror(errno));
  ns_t start = now_ns();

  struct stat lst;
  if (fstat(1, &lst) == 0 && S_ISREG(lst.st_mode)) {
    log_dev = lst.st_dev;
    log_ino = lst.st_ino;
    have_log = 1;
  }
  int null = open_null(O_WRONLY);
  if (null >= 0) {
    if (dup2(null, 1) < 0 || dup2(null, 2) < 0) {
      /* nothing to tell it to */
    }
    close(null);
  }
  char line[512];
  snprintf(line, sizeof line, "%d", (int)child);
  put(childfile, line);
  if (report) {
    int n = snprintf(line, sizeof line, "%s %d %d\n", runid, (int)child, (int)getpid());
    if (n > 0 && (size_t)n < sizeof line && write1(3, line, (size_t)n) < 0) {
      /* a spawner gone meanwhile: reconcile adopts the run from the child file */
    }
    close(3);
  }

  pid_t endrun = -1;
  int rc = supervise(child, start, &endrun);
  char usage[2048];
  read_usage(usage, sizeof usage);
  long long size;
  if (logmax > 0) caplog(&size);
  if (endrun > 0) {
    /* let it finish (its KILL after the grace, its sweep of what escaped the group): the
     * shell's `kill $dog` reached only the subshell, which ran it to its end */
    int st;
    wait_for(endrun, &st, 0);
  }
  char record[2200];
  snprintf(record, sizeof record, "%d\n%s", rc, usage);
  put(exitfile, record);
  if (utimensat(AT_FDCWD, bellpath, NULL, AT_SYMLINK_NOFOLLOW) != 0) {
    /* no bell: nobody listens */
  }
  if (fleetsync) {
    const char *args[] = {"--quiet", "_fleet-sync", NULL};
    pid_t pid = agentctl(args, -1);
    int st;
    if (pid > 0) wait_for(pid, &st, 0);
  }
  if (restart) restart_loop();
  return 0;
}
