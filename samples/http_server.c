// A thread-per-connection HTTP/1.1 server on 127.0.0.1 for the L7 tracer's tests and benchmarks. Each
// endpoint burns a known amount of CPU on the thread that serves it, so a profile can be checked against
// the requests that caused it.
//
//   http_server PORT          (PORT 0 picks a free port; the chosen port is printed as "listening PORT")
//
//   GET /burn?ms=N     burns N ms of thread CPU time in burn_cpu(), answers 200 with Content-Length
//   GET /burn?us=N     the same in microseconds, for servers that do a little work per request
//   GET /light         answers 200 at once
//   GET /fail          burns 5 ms, answers 500
//   GET /chunked?n=N   answers 200 with N chunks (Transfer-Encoding: chunked)
//   GET /big?kb=N      answers 200 with an N KiB body written in several writes
//   GET /call?port=P   makes a GET /light to 127.0.0.1:P (a client request), then answers 200
//   GET /cased         answers 200 with header names in unusual case (?chunked=1: a chunked body)
//
// Connections are keep-alive unless the client asks "Connection: close". Bad requests get 400.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUEST 16384

static double thread_cpu_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

__attribute__((noinline)) static unsigned long burn_cpu(double ms) {
  volatile unsigned long x = 1;
  double until = thread_cpu_ms() + ms;
  while (thread_cpu_ms() < until)
    for (int i = 0; i < 2000; i++)
      x = x * 6364136223846793005UL + 1442695040888963407UL;
  return x;
}

static int write_all(int fd, const char *data, size_t length) {
  while (length > 0) {
    ssize_t written = write(fd, data, length);
    if (written < 0 && errno == EINTR)
      continue;
    if (written <= 0)
      return -1;
    data += written;
    length -= (size_t)written;
  }
  return 0;
}

static int respond(int fd, int status, const char *reason, const char *body, int keep_alive) {
  char head[256];
  size_t body_length = strlen(body);
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\nConnection: %s\r\n\r\n",
                   status, reason, body_length, keep_alive ? "keep-alive" : "close");
  if (write_all(fd, head, (size_t)n) != 0)
    return -1;
  return body_length ? write_all(fd, body, body_length) : 0;
}

static long query_number(const char *target, const char *name, long fallback) {
  const char *query = strchr(target, '?');
  if (!query)
    return fallback;
  size_t name_length = strlen(name);
  for (const char *p = query + 1; *p;) {
    if (strncmp(p, name, name_length) == 0 && p[name_length] == '=')
      return strtol(p + name_length + 1, NULL, 10);
    p = strchr(p, '&');
    if (!p)
      break;
    p++;
  }
  return fallback;
}

static int call_peer(long port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = -1;
  if (connect(fd, (struct sockaddr *)&address, sizeof address) == 0) {
    const char *request = "GET /light HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (write_all(fd, request, strlen(request)) == 0) {
      char buffer[4096];
      ssize_t n;
      while ((n = read(fd, buffer, sizeof buffer)) > 0)
        ok = 0;
    }
  }
  close(fd);
  return ok;
}

// Returns 0 to keep the connection, -1 to close it.
static int serve_request(int fd, char *request, size_t header_length) {
  char method[16], target[2048];
  request[header_length] = 0;
  if (sscanf(request, "%15s %2047s", method, target) != 2 || strncmp(target, "/", 1) != 0) {
    respond(fd, 400, "Bad Request", "bad request\n", 0);
    return -1;
  }
  int keep_alive = strcasestr(request, "\nConnection: close") == NULL;
  char path[2048];
  snprintf(path, sizeof path, "%s", target);
  char *question = strchr(path, '?');
  if (question)
    *question = 0;

  int result;
  if (strcmp(path, "/burn") == 0) {
    long microseconds = query_number(target, "us", -1);
    burn_cpu(microseconds >= 0 ? (double)microseconds / 1000 : (double)query_number(target, "ms", 10));
    result = respond(fd, 200, "OK", "burned\n", keep_alive);
  } else if (strcmp(path, "/light") == 0) {
    result = respond(fd, 200, "OK", "ok\n", keep_alive);
  } else if (strcmp(path, "/fail") == 0) {
    burn_cpu(5);
    result = respond(fd, 500, "Internal Server Error", "failed\n", keep_alive);
  } else if (strcmp(path, "/chunked") == 0) {
    long chunks = query_number(target, "n", 3);
    const char *head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n";
    result = write_all(fd, head, strlen(head));
    for (long i = 0; result == 0 && i < chunks && i < 1000; i++)
      result = write_all(fd, "6\r\nchunk\n\r\n", 11);
    if (result == 0)
      result = write_all(fd, "0\r\n\r\n", 5);
  } else if (strcmp(path, "/big") == 0) {
    long kilobytes = query_number(target, "kb", 256);
    if (kilobytes < 0 || kilobytes > 65536)
      kilobytes = 256;
    char head[200];
    int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %ld\r\n\r\n", kilobytes * 1024);
    result = write_all(fd, head, (size_t)n);
    static char kilobyte[1024];
    memset(kilobyte, 'x', sizeof kilobyte);
    for (long i = 0; result == 0 && i < kilobytes; i++)
      result = write_all(fd, kilobyte, sizeof kilobyte);
  } else if (strcmp(path, "/cased") == 0) {
    // Header names are case-insensitive, and each framing header here follows a name with the same first
    // and eighth letters: the tracer must find the framing all the same.
    const char *head = query_number(target, "chunked", 0)
                           ? "HTTP/1.1 200 OK\r\ntransport-note: not framing\r\ntRANSFER-eNCODING: chunked\r\n\r\n"
                           : "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nCONTENT-LENGTH: 6\r\n\r\n";
    const char *body = query_number(target, "chunked", 0) ? "6\r\ncased\n\r\n0\r\n\r\n" : "cased\n";
    result = write_all(fd, head, strlen(head));
    if (result == 0)
      result = write_all(fd, body, strlen(body));
  } else if (strcmp(path, "/call") == 0) {
    int called = call_peer(query_number(target, "port", 0));
    result = respond(fd, called == 0 ? 200 : 502, called == 0 ? "OK" : "Bad Gateway", "called\n", keep_alive);
  } else {
    result = respond(fd, 404, "Not Found", "not found\n", keep_alive);
  }
  return result == 0 && keep_alive ? 0 : -1;
}

static void *serve_connection(void *argument) {
  int fd = (int)(long)argument;
  static __thread char buffer[MAX_REQUEST + 1];
  size_t used = 0;
  for (;;) {
    char *end = used ? strstr(buffer, "\r\n\r\n") : NULL;
    if (!end) {
      if (used >= MAX_REQUEST) {
        respond(fd, 431, "Request Header Fields Too Large", "too large\n", 0);
        break;
      }
      ssize_t n = read(fd, buffer + used, MAX_REQUEST - used);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      used += (size_t)n;
      buffer[used] = 0;
      if (memchr(buffer, 0, used)) { // binary garbage
        respond(fd, 400, "Bad Request", "bad request\n", 0);
        break;
      }
      continue;
    }
    size_t header_length = (size_t)(end - buffer) + 4;
    char saved = buffer[header_length];
    if (serve_request(fd, buffer, header_length) != 0)
      break;
    buffer[header_length] = saved;
    // Requests here carry no body; keep what a pipelining client already sent.
    memmove(buffer, buffer + header_length, used - header_length);
    used -= header_length;
    buffer[used] = 0;
  }
  close(fd);
  return NULL;
}

int main(int argc, char **argv) {
  // A launcher may hand us a blocked SIGTERM (Foundation's Process does); we want to be stoppable.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_IGN);
  int port = argc > 1 ? atoi(argv[1]) : 0;
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  int yes = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 512) != 0) {
    perror("http_server: bind/listen");
    return 1;
  }
  socklen_t length = sizeof address;
  getsockname(listener, (struct sockaddr *)&address, &length);
  printf("listening %d\n", ntohs(address.sin_port));
  fflush(stdout);
  for (;;) {
    int fd = accept(listener, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
        continue;
      perror("http_server: accept");
      return 1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    pthread_t thread;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&thread, &attributes, serve_connection, (void *)(long)fd) != 0)
      close(fd);
    pthread_attr_destroy(&attributes);
  }
}
