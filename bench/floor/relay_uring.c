// The byte relay of relay.c on io_uring instead of epoll (issue 17's question whether another
// event loop lowers the kernel's floor): the same pairs of connections, but io_uring's cheapest
// way to serve sockets — one multishot receive per socket, armed once, filling buffers from a
// ring the kernel picks them from, and one io_uring_enter that both submits what the last
// batch of completions asked for (the sends) and waits for the next batch.
//   relay_uring LISTEN_PORT UPSTREAM_PORT        (both on 127.0.0.1)
//   relay_uring --check                          (exits 0 when this kernel can run it)
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loopback.h"

enum { kRecv = 0, kSend = 1, kAccept = 2 };
enum { kBuffers = 1024, kBufferSize = 16384, kNone = 0xffff };

// What a filled buffer holds, by buffer id: a side's chunks waiting to go out are a list.
struct chunk {
  unsigned len, off;
  unsigned short next;
};
static struct chunk chunks[kBuffers];

struct pair;
struct side {
  int fd;
  struct side* peer;
  struct pair* pair;
  int sending;                // a send of `head` is in flight (one at a time: in order)
  int ended;                  // its end closed: the pair ends once its chunks are sent
  unsigned short head, tail;  // chunks received on this side, waiting to go to the peer
  struct side* next_starved;  // its receive ended for want of a buffer: armed on a return
};

struct pair {
  struct side client, upstream;
  int pending;  // operations submitted and not completed
  int dead;
};

static struct io_uring ring;
static struct io_uring_buf_ring* buffer_ring;
static char* buffers;
static struct side* starved;  // sides waiting for a buffer (each holds its pair)
static unsigned returned;     // buffers given back in this batch of completions

static struct io_uring_sqe* next_sqe(void) {
  struct io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  if (!sqe) {  // the submission queue is full: hand it to the kernel now
    io_uring_submit(&ring);
    sqe = io_uring_get_sqe(&ring);
  }
  return sqe;
}

static void give_back(unsigned short buffer) {
  io_uring_buf_ring_add(buffer_ring, buffers + (size_t)buffer * kBufferSize, kBufferSize, buffer,
                        io_uring_buf_ring_mask(kBuffers), 0);
  io_uring_buf_ring_advance(buffer_ring, 1);
  ++returned;
}

static void arm_recv(struct side* s) {
  struct io_uring_sqe* sqe = next_sqe();
  io_uring_prep_recv_multishot(sqe, s->fd, NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = 0;
  io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)s | kRecv);
  s->pair->pending++;
}

static void send_head(struct side* s) {
  const struct chunk* c = &chunks[s->head];
  struct io_uring_sqe* sqe = next_sqe();
  io_uring_prep_send(sqe, s->peer->fd, buffers + (size_t)s->head * kBufferSize + c->off,
                     c->len - c->off, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)s | kSend);
  s->sending = 1;
  s->pair->pending++;
}

static void submit_accept(int lfd) {
  struct io_uring_sqe* sqe = next_sqe();
  io_uring_prep_accept(sqe, lfd, NULL, NULL, 0);
  io_uring_sqe_set_data64(sqe, kAccept);
}

static void drop_queue(struct side* s) {
  while (s->head != kNone) {
    const unsigned short next = chunks[s->head].next;
    give_back(s->head);
    s->head = next;
  }
}

// Ends a pair: shutting both sockets down completes the operations still waiting on them; the
// pair is freed when the last one has completed.
static void end_pair(struct pair* p) {
  if (!p->dead) {
    p->dead = 1;
    shutdown(p->client.fd, SHUT_RDWR);
    shutdown(p->upstream.fd, SHUT_RDWR);
  }
  if (p->pending == 0) {
    drop_queue(&p->client);
    drop_queue(&p->upstream);
    close(p->client.fd);
    close(p->upstream.fd);
    free(p);
  }
}

static void open_pair(int cfd, int upstream_port) {
  const int ufd = connect_upstream(cfd, upstream_port);
  if (ufd < 0) return;
  struct pair* p = calloc(1, sizeof *p);
  p->client = (struct side){.fd = cfd, .peer = &p->upstream, .pair = p, .head = kNone};
  p->upstream = (struct side){.fd = ufd, .peer = &p->client, .pair = p, .head = kNone};
  arm_recv(&p->client);
  arm_recv(&p->upstream);
}

static void received(struct side* s, const struct io_uring_cqe* cqe) {
  struct pair* p = s->pair;
  const int more = cqe->flags & IORING_CQE_F_MORE;
  if (!more) p->pending--;  // the multishot receive ended
  if (cqe->flags & IORING_CQE_F_BUFFER) {
    const unsigned short buffer = (unsigned short)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    if (p->dead || cqe->res <= 0) {
      give_back(buffer);
    } else {
      chunks[buffer] = (struct chunk){.len = (unsigned)cqe->res, .off = 0, .next = kNone};
      if (s->head == kNone)
        s->head = buffer;
      else
        chunks[s->tail].next = buffer;
      s->tail = buffer;
      if (!s->sending) send_head(s);
      if (!more) arm_recv(s);  // ended with data (the kernel's choice): arm it again
      return;
    }
  }
  if (cqe->res == -ENOBUFS && !p->dead) {  // every buffer waits on a slow reader: wait too
    p->pending++;
    s->next_starved = starved;
    starved = s;
    return;
  }
  if (cqe->res == 0 && !p->dead && s->head != kNone) {
    s->ended = 1;  // what was read before the end goes out first
    return;
  }
  end_pair(p);  // end of stream, an error, or a pair already ending
}

static void sent(struct side* s, const struct io_uring_cqe* cqe) {
  struct pair* p = s->pair;
  p->pending--;
  s->sending = 0;
  if (p->dead || cqe->res <= 0) {
    end_pair(p);
    return;
  }
  struct chunk* c = &chunks[s->head];
  c->off += (unsigned)cqe->res;
  if (c->off == c->len) {
    const unsigned short done = s->head;
    s->head = c->next;
    give_back(done);
  }
  if (s->head != kNone)
    send_head(s);
  else if (s->ended)
    end_pair(p);
}

static void complete(const struct io_uring_cqe* cqe, int lfd, int upstream_port) {
  const uint64_t data = io_uring_cqe_get_data64(cqe);
  if (data == kAccept) {
    if (cqe->res >= 0) open_pair(cqe->res, upstream_port);
    submit_accept(lfd);
    return;
  }
  struct side* s = (struct side*)(uintptr_t)(data & ~(uint64_t)3);
  if ((data & 3) == kRecv)
    received(s, cqe);
  else
    sent(s, cqe);
}

// The ring and its buffers; 0, or 1 with why on stderr.
static int setup_ring(void) {
  // One thread submits, and completions' work runs when it waits (no interrupts for it).
  struct io_uring_params params = {.flags = IORING_SETUP_SINGLE_ISSUER |
                                            IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL};
  int err = io_uring_queue_init_params(4096, &ring, &params);
  if (err) {  // multishot receives and buffer rings need 6.0, these flags 6.1
    fprintf(stderr, "relay_uring: io_uring_queue_init: %s\n", strerror(-err));
    return 1;
  }
  void* ring_memory = NULL;
  if (posix_memalign(&ring_memory, 4096, kBuffers * sizeof(struct io_uring_buf)) ||
      posix_memalign((void**)&buffers, 4096, (size_t)kBuffers * kBufferSize)) {
    fprintf(stderr, "relay_uring: out of memory\n");
    return 1;
  }
  buffer_ring = ring_memory;
  io_uring_buf_ring_init(buffer_ring);
  struct io_uring_buf_reg reg = {
      .ring_addr = (unsigned long)buffer_ring, .ring_entries = kBuffers, .bgid = 0};
  err = io_uring_register_buf_ring(&ring, &reg, 0);
  if (err) {
    fprintf(stderr, "relay_uring: io_uring_register_buf_ring: %s\n", strerror(-err));
    return 1;
  }
  for (unsigned short b = 0; b < kBuffers; ++b) give_back(b);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "--check") == 0) return setup_ring();  // can this kernel?
  if (argc != 3) {
    fprintf(stderr, "usage: relay_uring LISTEN_PORT UPSTREAM_PORT | --check\n");
    return 2;
  }
  const int upstream_port = atoi(argv[2]);
  const int lfd = listen_loopback(atoi(argv[1]), 0);
  if (lfd < 0) return 1;
  if (setup_ring()) return 1;
  submit_accept(lfd);
  for (;;) {
    const int err = io_uring_submit_and_wait(&ring, 1);
    if (err < 0 && err != -EINTR) {
      fprintf(stderr, "relay_uring: io_uring_submit_and_wait: %s\n", strerror(-err));
      return 1;
    }
    struct io_uring_cqe* cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      complete(cqe, lfd, upstream_port);
      ++seen;
    }
    io_uring_cq_advance(&ring, seen);
    while (starved && returned > 0) {
      struct side* s = starved;
      starved = s->next_starved;
      s->pair->pending--;
      if (s->pair->dead)
        end_pair(s->pair);
      else
        arm_recv(s);
    }
    returned = 0;
  }
}
