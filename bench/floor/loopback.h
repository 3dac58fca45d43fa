// What both byte relays do alike: listen on 127.0.0.1, and give each client its own upstream
// connection there (keep-alive on both, as a proxy's pool gives under steady load).
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// A listening socket (`type_flags` such as SOCK_NONBLOCK), or -1 with why on stderr.
static int listen_loopback(int port, int type_flags) {
  int fd = socket(AF_INET, SOCK_STREAM | type_flags, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = loopback(port);
  if (bind(fd, (struct sockaddr*)&a, sizeof a) || listen(fd, 1024)) {
    perror("relay: listen");
    close(fd);
    return -1;
  }
  return fd;
}

// The upstream connection for client `cfd` (blocking; connected at once on loopback), both
// with TCP_NODELAY; -1 with both closed when the upstream refuses.
static int connect_upstream(int cfd, int upstream_port) {
  int ufd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = loopback(upstream_port);
  if (connect(ufd, (struct sockaddr*)&a, sizeof a)) {
    close(ufd);
    close(cfd);
    return -1;
  }
  int one = 1;
  setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return ufd;
}
