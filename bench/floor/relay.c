// The kernel's floor for an HTTP/1.1 proxy (issue 17, docs/performance.md): a byte relay with
// no work per request in user space. Each client connection gets its own upstream connection
// (keep-alive on both, as a proxy's pool gives under steady load); bytes go through one
// buffer per direction with epoll, level-triggered, one thread. A proxy makes the same
// syscalls at least (read the request, write it upstream, read the answer, write it back),
// so its requests per CPU-second divided by this relay's is the share of the floor it reaches.
//   relay LISTEN_PORT UPSTREAM_PORT        (both on 127.0.0.1)
#define _GNU_SOURCE  // accept4
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loopback.h"

struct side {
  int fd;
  int dead;  // closed in this batch of events: freed after it
  struct side* peer;
  struct side* next_dead;
  size_t len, off;  // bytes read from this side, waiting to be written to the peer
  char buf[16384];
};

static int ep;
static struct side* graveyard;

static void watch(struct side* s, int op, unsigned events) {
  struct epoll_event ev = {.events = events, .data.ptr = s};
  epoll_ctl(ep, op, s->fd, &ev);
}

static void close_pair(struct side* s) {
  struct side* p = s->peer;
  close(s->fd);
  close(p->fd);
  s->dead = p->dead = 1;
  s->next_dead = p;
  p->next_dead = graveyard;
  graveyard = s;
}

// Writes what `s` holds to its peer; returns 0 when the pair is gone.
static int flush(struct side* s) {
  while (s->off < s->len) {
    ssize_t n = write(s->peer->fd, s->buf + s->off, s->len - s->off);
    if (n < 0 && errno == EAGAIN) {  // the peer is slow: stop reading s, wait for the peer
      watch(s, EPOLL_CTL_MOD, 0);
      watch(s->peer, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
      return 1;
    }
    if (n <= 0) return 0;
    s->off += (size_t)n;
  }
  s->off = s->len = 0;
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: relay LISTEN_PORT UPSTREAM_PORT\n");
    return 2;
  }
  const int upstream_port = atoi(argv[2]);
  const int lfd = listen_loopback(atoi(argv[1]), SOCK_NONBLOCK);
  if (lfd < 0) return 1;
  ep = epoll_create1(0);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      struct side* s = events[i].data.ptr;
      if (s && s->dead) continue;
      if (!s) {  // new clients, each with its own upstream connection
        int cfd;
        while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          const int ufd = connect_upstream(cfd, upstream_port);
          if (ufd < 0) continue;
          fcntl(ufd, F_SETFL, O_NONBLOCK);
          struct side* c = calloc(1, sizeof *c);
          struct side* u = calloc(1, sizeof *u);
          c->fd = cfd, u->fd = ufd, c->peer = u, u->peer = c;
          watch(c, EPOLL_CTL_ADD, EPOLLIN);
          watch(u, EPOLL_CTL_ADD, EPOLLIN);
        }
        continue;
      }
      if (events[i].events & EPOLLOUT) {  // writable again: what the peer holds for s
        watch(s, EPOLL_CTL_MOD, EPOLLIN);
        if (!flush(s->peer)) {
          close_pair(s);
          continue;
        }
        if (s->peer->len == 0) watch(s->peer, EPOLL_CTL_MOD, EPOLLIN);
        continue;
      }
      ssize_t got = read(s->fd, s->buf, sizeof s->buf);
      if (got <= 0) {
        if (got < 0 && errno == EAGAIN) continue;
        close_pair(s);
        continue;
      }
      s->len = (size_t)got;
      s->off = 0;
      if (!flush(s)) close_pair(s);
    }
    while (graveyard) {
      struct side* next = graveyard->next_dead;
      free(graveyard);
      graveyard = next;
    }
  }
}
