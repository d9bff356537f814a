/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * echo-bench - the echo-server benchmark (minivent's echo test, measured).
 *
 * One server process forks N client processes. Each client connects to the
 * server (abstract AF_UNIX stream socket, or TCP on 127.0.0.1 with --tcp),
 * sends "Hello, this is <pid>" (padded to --payload bytes), waits for the
 * echo, checks it and repeats: at once with --max-wait=0, else after a
 * random 1..max-wait ms. Server and clients are written exactly as a
 * minivent program would be: one struct event per connection, EPOLLIN and
 * EPOLLOUT switched with event_modify() and a per-step timeout (1 s to send,
 * 2 s to receive) re-armed with event_mod_timeout() on every step.
 *
 * --raw runs the same protocol on plain epoll without timeouts, making the
 * same read/write/epoll_ctl(MOD) calls: the limit that library overhead is
 * measured against.
 *
 * All clients start at the same instant and stop after --runtime seconds by
 * themselves; the server stops when the last connection closed (or a guard
 * timer fires) and reaps every client.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <vent/event.h>

#include "bench-util.h"

#define MAX_CLIENTS 4096
#define MAX_THREADS 64
#define MAX_PAYLOAD (1 << 20)
#define SEND_TMO_S 1
#define RECV_TMO_S 2
/* The server gives up this long after the clients should have stopped. */
#define GUARD_S 10

static const char *prog = "echo-bench";

enum { LOG_QUIET, LOG_NORMAL, LOG_VERBOSE, LOG_DEBUG };

static struct {
	long clients;
	long runtime_s;
	long max_wait_ms;
	long payload;
	long threads;
	int verbosity;
	bool tcp;
	bool raw;
	bool json;
} cfg = {
	.clients = 1,
	.runtime_s = 10,
	.max_wait_ms = 0,
	.payload = 0,
	.threads = 1,
	.verbosity = LOG_NORMAL,
};

#define msg(level, ...)                                                  \
	do {                                                             \
		if (cfg.verbosity >= (level))                            \
			fprintf(stderr, __VA_ARGS__);                    \
	} while (0)
#define err(...) fprintf(stderr, __VA_ARGS__)

/* Results of one client, in memory shared with the server. */
struct client_stats {
	pid_t pid;
	int failed;        /* protocol error, timeout, or I/O error */
	uint64_t timeouts; /* per-step timeouts seen */
	struct bench_hist rtt;
};

static struct client_stats *stats;
static char abstract_name[64];
static struct sockaddr_storage srv_addr;
static socklen_t srv_addr_len;
static int64_t t_start, t_end; /* CLOCK_MONOTONIC ns, common to all processes */

static int set_nonblock_cloexec(int fd)
{
	int fl = fcntl(fd, F_GETFL, 0);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	fl = fcntl(fd, F_GETFD, 0);
	if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

static void set_nodelay(int fd)
{
	int one = 1;

	if (cfg.tcp)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void sleep_until(int64_t ns)
{
	struct timespec ts = {ns / 1000000000, ns % 1000000000};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* ------------------------------------------------------------------------
 * Client
 */

struct client {
	struct event e; /* first: the vent flavour uses container_of-free casts */
	struct client_stats *st;
	size_t len;  /* message length */
	size_t done; /* bytes written or read in the current step */
	int64_t sent_at;
	bool stop;
	uint64_t seed;
	char msg[];  /* the message, then room for the echo */
};

static char *client_rbuf(struct client *c)
{
	return c->msg + c->len;
}

/* Returns 1 when the whole message is out, 0 when more is to write, -1 on error. */
static int client_write(struct client *c, int fd)
{
	if (c->done == 0)
		c->sent_at = bench_now_ns();
	ssize_t n = write(fd, c->msg + c->done, c->len - c->done);
	if (n < 0) {
		if (errno == EAGAIN)
			return 0;
		msg(LOG_NORMAL, "%s: client %d: write: %s\n", prog, (int)c->st->pid, strerror(errno));
		return -1;
	}
	c->done += (size_t)n;
	if (c->done < c->len)
		return 0;
	c->done = 0;
	return 1;
}

/*
 * Returns 1 when the whole echo arrived and was checked, 0 when more is to
 * read, -1 on error. Sets c->stop once the runtime is over.
 */
static int client_read(struct client *c, int fd)
{
	ssize_t n = read(fd, client_rbuf(c) + c->done, c->len - c->done);
	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return 0;
		msg(LOG_NORMAL, "%s: client %d: read: %s\n", prog, (int)c->st->pid,
		    n == 0 ? "server closed the connection" : strerror(errno));
		return -1;
	}
	c->done += (size_t)n;
	if (c->done < c->len)
		return 0;
	c->done = 0;
	int64_t now = bench_now_ns();
	if (memcmp(client_rbuf(c), c->msg, c->len) != 0) {
		msg(LOG_NORMAL, "%s: client %d: bad response\n", prog, (int)c->st->pid);
		return -1;
	}
	/* Only requests that completed inside the window count. */
	if (now >= t_end) {
		c->stop = true;
		return 1;
	}
	bench_hist_add(&c->st->rtt, (uint64_t)(now - c->sent_at));
	msg(LOG_DEBUG, "client %d: response %" PRIu64 " ok, %" PRId64 " ns\n",
	    (int)c->st->pid, c->st->rtt.count, now - c->sent_at);
	return 1;
}

static long client_delay_ms(struct client *c)
{
	return (long)(bench_rand(&c->seed) % (uint64_t)cfg.max_wait_ms) + 1;
}

static const struct timespec send_tmo = {SEND_TMO_S, 0};
static const struct timespec recv_tmo = {RECV_TMO_S, 0};

/* The minivent way: one callback, EPOLLIN/EPOLLOUT switched per step. */
static int vent_client_cb(struct event *evt, uint32_t events)
{
	struct client *c = (struct client *)evt;
	struct timespec tmo;
	int rc;

	if (evt->reason == REASON_TIMEOUT && evt->ep.events) {
		msg(LOG_NORMAL, "%s: client %d: timeout\n", prog, (int)c->st->pid);
		c->st->timeouts++;
		c->st->failed = 1;
		vent_loop_stop(evt->dsp);
		return EVENTCB_CONTINUE;
	}
	if (events & (EPOLLHUP | EPOLLERR)) {
		msg(LOG_NORMAL, "%s: client %d: server hung up\n", prog, (int)c->st->pid);
		c->st->failed = 1;
		vent_loop_stop(evt->dsp);
		evt->ep.events = 0;
		event_modify(evt);
		return EVENTCB_CONTINUE;
	}
	if (evt->reason == REASON_TIMEOUT) {
		/* The random delay is over: send the next request. */
		evt->ep.events = EPOLLOUT;
		tmo = send_tmo;
	} else if (events & EPOLLOUT) {
		rc = client_write(c, evt->fd);
		if (rc < 0)
			goto fail;
		if (rc > 0) {
			evt->ep.events = EPOLLIN;
			tmo = recv_tmo;
		} else {
			tmo = send_tmo;
		}
	} else {
		rc = client_read(c, evt->fd);
		if (rc < 0)
			goto fail;
		if (rc == 0) {
			tmo = recv_tmo;
		} else if (c->stop) {
			vent_loop_stop(evt->dsp);
			evt->ep.events = 0;
			tmo = (struct timespec){0, 0};
		} else if (cfg.max_wait_ms == 0) {
			evt->ep.events = EPOLLOUT;
			tmo = send_tmo;
		} else {
			evt->ep.events = 0;
			long ms = client_delay_ms(c);
			tmo = (struct timespec){ms / 1000, ms % 1000 * 1000000};
		}
	}
	if ((rc = event_modify(evt)) < 0) {
		msg(LOG_NORMAL, "%s: event_modify: %s\n", prog, strerror(-rc));
		goto fail;
	}
	if ((rc = event_mod_timeout(evt, &tmo)) < 0) {
		msg(LOG_NORMAL, "%s: event_mod_timeout: %s\n", prog, strerror(-rc));
		goto fail;
	}
	return EVENTCB_CONTINUE;
fail:
	c->st->failed = 1;
	vent_loop_stop(evt->dsp);
	evt->ep.events = 0;
	event_modify(evt);
	return EVENTCB_CONTINUE;
}

/* A guard against a client that hangs: stop at t_end + GUARD_S. */
static int vent_client_guard_cb(struct event *evt, uint32_t events)
{
	(void)events;
	vent_loop_stop(evt->dsp);
	return EVENTCB_REMOVE;
}

static int run_vent_client(struct client *c, int fd)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	struct event guard = TIMER_EVENT_ON_STACK(vent_client_guard_cb, 0);
	int rc;

	if (!dsp) {
		err("%s: new_dispatcher: %s\n", prog, strerror(errno));
		return 1;
	}
	guard.flags = TMO_ABS;
	guard.tmo.tv_sec = (t_end / 1000000000) + GUARD_S;
	guard.tmo.tv_nsec = t_end % 1000000000;
	guard.cleanup = NULL;
	c->e = EVENT_W_TMO_ON_STACK(vent_client_cb, fd, EPOLLOUT,
						  SEND_TMO_S * 1000000L);
	c->e.cleanup = NULL;
	if ((rc = event_add(dsp, &guard)) < 0 || (rc = event_add(dsp, &c->e)) < 0) {
		err("%s: event_add: %s\n", prog, strerror(-rc));
		free_dispatcher(dsp);
		return 1;
	}
	rc = event_loop(dsp, NULL, NULL);
	if (rc < 0) {
		err("%s: event_loop: %s\n", prog, strerror(-rc));
		c->st->failed = 1;
	}
	free_dispatcher(dsp);
	return c->st->failed;
}

/* The same protocol on plain epoll: no timeouts, same syscalls per step. */
static int run_raw_client(struct client *c, int fd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int tfd = -1;
	struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = 0};

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		err("%s: epoll: %s\n", prog, strerror(errno));
		return 1;
	}
	if (cfg.max_wait_ms > 0) {
		/* Only the random delay needs a timer. */
		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
		ev.events = EPOLLIN;
		ev.data.u64 = 1;
		if (tfd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) < 0) {
			err("%s: timerfd: %s\n", prog, strerror(errno));
			return 1;
		}
	}
	uint32_t mask = EPOLLOUT;
	int timeout_ms = (int)((t_end - bench_now_ns()) / 1000000) + GUARD_S * 1000;
	while (!c->stop && !c->st->failed) {
		struct epoll_event evs[2];
		int n = epoll_wait(ep, evs, 2, timeout_ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			c->st->failed = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			uint32_t want = mask;
			int rc;
			if (evs[i].data.u64 == 1) {
				uint64_t x;
				if (read(tfd, &x, sizeof(x)) < 0)
					continue;
				want = EPOLLOUT;
			} else if (evs[i].events & (EPOLLHUP | EPOLLERR)) {
				c->st->failed = 1;
				break;
			} else if (evs[i].events & EPOLLOUT) {
				rc = client_write(c, fd);
				if (rc < 0) {
					c->st->failed = 1;
					break;
				}
				if (rc > 0)
					want = EPOLLIN;
			} else {
				rc = client_read(c, fd);
				if (rc < 0) {
					c->st->failed = 1;
					break;
				}
				if (rc > 0 && !c->stop) {
					if (cfg.max_wait_ms == 0) {
						want = EPOLLOUT;
					} else {
						long ms = client_delay_ms(c);
						struct itimerspec its = {
							.it_value = {ms / 1000, ms % 1000 * 1000000}};
						timerfd_settime(tfd, 0, &its, NULL);
						want = 0;
					}
				}
			}
			if (want != mask) {
				ev.events = want;
				ev.data.u64 = 0;
				epoll_ctl(ep, mask == 0 ? EPOLL_CTL_ADD :
					      want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD, fd, &ev);
				mask = want;
			}
		}
	}
	if (tfd >= 0)
		close(tfd);
	close(ep);
	return c->st->failed;
}

static int client_main(int num)
{
	struct client_stats *st = &stats[num];
	size_t len;
	char hello[64];
	int fd, rc;

	st->pid = getpid();
	snprintf(hello, sizeof(hello), "Hello, this is %ld", (long)st->pid);
	len = cfg.payload ? (size_t)cfg.payload : strlen(hello) + 1;
	struct client *c = calloc(1, sizeof(*c) + 2 * len);
	if (!c) {
		err("%s: out of memory\n", prog);
		return 1;
	}
	c->st = st;
	c->len = len;
	c->seed = (uint64_t)st->pid * 0x9E3779B97F4A7C15ULL | 1;
	memset(c->msg, '.', len);
	memcpy(c->msg, hello, strlen(hello) + 1 < len ? strlen(hello) + 1 : len);

	fd = socket(srv_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&srv_addr, srv_addr_len) < 0) {
		err("%s: client %d: connect: %s\n", prog, (int)st->pid, strerror(errno));
		st->failed = 1;
		return 1;
	}
	set_nodelay(fd);
	if ((rc = set_nonblock_cloexec(fd)) < 0) {
		err("%s: fcntl: %s\n", prog, strerror(-rc));
		return 1;
	}
	msg(LOG_VERBOSE, "client %d running with pid %ld\n", num, (long)st->pid);
	sleep_until(t_start);
	rc = cfg.raw ? run_raw_client(c, fd) : run_vent_client(c, fd);
	close(fd);
	msg(LOG_VERBOSE, "client %d stopped: %" PRIu64 " requests, max rtt %.1f us\n", num,
	    st->rtt.count, st->rtt.max / 1e3);
	free(c);
	return rc;
}

/* ------------------------------------------------------------------------
 * Server
 */

struct server;

struct conn {
	struct event e; /* first */
	struct server *srv;
	size_t len;
	size_t done;
	char buf[];
};

struct server {
	int listen_fd;
	struct dispatcher *dsp; /* vent flavour */
	int ep, stopfd;         /* raw flavour */
	pthread_t thread;
	uint64_t requests;
	int error;
};

static struct server servers[MAX_THREADS];
static atomic_int conns_closed;
static atomic_int conns_open;
static size_t msg_len; /* server side: 0 = variable (default message) */

static void stop_all_servers(void)
{
	for (long i = 0; i < cfg.threads; i++) {
		if (cfg.raw) {
			uint64_t one = 1;
			ssize_t r = write(servers[i].stopfd, &one, sizeof(one));
			(void)r;
		} else {
			vent_loop_stop(servers[i].dsp);
		}
	}
}

static atomic_bool servers_done;

static void conn_closed(void)
{
	atomic_fetch_sub(&conns_open, 1);
	if (atomic_fetch_add(&conns_closed, 1) + 1 == cfg.clients && !atomic_load(&servers_done))
		stop_all_servers();
}

/*
 * Server read step: returns 1 when a full request is in, 0 for more, -1 when
 * the connection is over. With the default message, one read is one request
 * (the client's message fits any socket buffer), as in minivent.
 */
static int conn_read(struct conn *c)
{
	ssize_t n = read(c->e.fd, c->buf + c->done, c->len - c->done);
	if (n <= 0)
		return n < 0 && errno == EAGAIN ? 0 : -1;
	c->done += (size_t)n;
	if (msg_len && c->done < c->len)
		return 0;
	return 1;
}

/* Server write step: 1 when the echo is out, 0 for more, -1 on error. */
static int conn_write(struct conn *c, size_t *off)
{
	ssize_t n = write(c->e.fd, c->buf + *off, c->done - *off);
	if (n < 0)
		return errno == EAGAIN ? 0 : -1;
	*off += (size_t)n;
	if (*off < c->done)
		return 0;
	c->srv->requests++;
	return 1;
}

/* Bytes of the echo already written back, kept after the buffer. */
static size_t *conn_woff(struct conn *c)
{
	return (size_t *)(void *)(c->buf + ((c->len + 7) & ~(size_t)7));
}

static void conn_cleanup(struct event *evt)
{
	struct conn *c = (struct conn *)evt;

	close(evt->fd);
	conn_closed();
	free(c);
}

static int vent_conn_cb(struct event *evt, uint32_t events)
{
	struct conn *c = (struct conn *)evt;
	const struct timespec *tmo;
	int rc;

	if (evt->reason == REASON_TIMEOUT) {
		msg(LOG_NORMAL, "%s: server: timeout on a connection\n", prog);
		return EVENTCB_CLEANUP;
	}
	if (events & EPOLLIN) {
		rc = conn_read(c);
		if (rc < 0)
			return EVENTCB_CLEANUP; /* the client is done */
		if (rc > 0) {
			*conn_woff(c) = 0;
			evt->ep.events = EPOLLOUT;
			tmo = &send_tmo;
		} else {
			tmo = &recv_tmo;
		}
	} else if (events & EPOLLOUT) {
		rc = conn_write(c, conn_woff(c));
		if (rc < 0)
			return EVENTCB_CLEANUP;
		if (rc > 0) {
			c->done = 0;
			evt->ep.events = EPOLLIN;
			tmo = &recv_tmo;
		} else {
			tmo = &send_tmo;
		}
	} else {
		return EVENTCB_CLEANUP; /* EPOLLHUP/EPOLLERR alone */
	}
	if (event_modify(evt) < 0)
		return EVENTCB_CLEANUP;
	if (cfg.max_wait_ms && tmo == &recv_tmo) {
		/* The client may think for up to max-wait before it sends. */
		struct timespec t = {RECV_TMO_S + cfg.max_wait_ms / 1000,
				     cfg.max_wait_ms % 1000 * 1000000};
		rc = event_mod_timeout(evt, &t);
	} else {
		rc = event_mod_timeout(evt, tmo);
	}
	return rc < 0 ? EVENTCB_CLEANUP : EVENTCB_CONTINUE;
}

static size_t conn_bufsize(void)
{
	return msg_len ? msg_len : 256;
}

static struct conn *conn_new(struct server *srv, int fd)
{
	size_t len = conn_bufsize();
	struct conn *c = calloc(1, sizeof(*c) + ((len + 7) & ~(size_t)7) + sizeof(size_t));

	if (!c)
		return NULL;
	c->srv = srv;
	c->len = len;
	c->e.fd = fd;
	return c;
}

static int accept_one(struct server *srv)
{
	int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return errno == EAGAIN ? 0 : -errno;
	set_nodelay(fd);
	atomic_fetch_add(&conns_open, 1);
	msg(LOG_DEBUG, "server: new connection\n");
	return fd;
}

struct listener {
	struct event e;
	struct server *srv;
};

static int vent_listen_cb(struct event *evt, uint32_t events)
{
	struct listener *l = (struct listener *)evt;
	int fd, rc;

	(void)events;
	if (evt->reason == REASON_TIMEOUT) {
		err("%s: server: guard timeout: clients did not finish, killing them\n", prog);
		for (long i = 0; i < cfg.clients; i++)
			if (stats[i].pid > 0)
				kill(stats[i].pid, SIGKILL);
		l->srv->error = 1;
		stop_all_servers();
		return EVENTCB_CONTINUE;
	}
	while ((fd = accept_one(l->srv)) > 0) {
		struct conn *c = conn_new(l->srv, fd);
		if (!c) {
			close(fd);
			conn_closed();
			continue;
		}
		c->e = EVENT_W_TMO_ON_HEAP(vent_conn_cb, fd, EPOLLIN,
							 (RECV_TMO_S * 1000L + 1000L +
							  (t_start - bench_now_ns()) / 1000000) *
								 1000L);
		c->e.cleanup = conn_cleanup;
		if ((rc = event_add(evt->dsp, &c->e)) < 0) {
			err("%s: event_add: %s\n", prog, strerror(-rc));
			conn_cleanup(&c->e);
		}
	}
	return EVENTCB_CONTINUE;
}

static void *vent_server_thread(void *arg)
{
	struct server *srv = arg;
	struct listener l = {.srv = srv};
	int rc;

	l.e = EVENT_ON_STACK(vent_listen_cb, srv->listen_fd, EPOLLIN);
	l.e.cleanup = NULL;
	/* Guard: absolute, t_end + GUARD_S. */
	l.e.flags = TMO_ABS;
	l.e.tmo.tv_sec = t_end / 1000000000 + GUARD_S;
	l.e.tmo.tv_nsec = t_end % 1000000000;
	if ((rc = event_add(srv->dsp, &l.e)) < 0) {
		err("%s: event_add: %s\n", prog, strerror(-rc));
		srv->error = 1;
		return NULL;
	}
	rc = event_loop(srv->dsp, NULL, NULL);
	if (rc < 0) {
		err("%s: event_loop: %s\n", prog, strerror(-rc));
		srv->error = 1;
	}
	event_remove(&l.e);
	return NULL;
}

/* Raw flavour: ids in epoll_data: 0 = listener, 1 = stop, 2 = guard, else conn. */
static void *raw_server_thread(void *arg)
{
	struct server *srv = arg;
	struct epoll_event ev, evs[64];
	int gfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = {.it_value = {t_end / 1000000000 + GUARD_S,
					      t_end % 1000000000}};
	bool running = true;

	if (gfd < 0 || timerfd_settime(gfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
		err("%s: timerfd: %s\n", prog, strerror(errno));
		srv->error = 1;
		return NULL;
	}
	ev.events = EPOLLIN;
	ev.data.u64 = 0;
	epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->listen_fd, &ev);
	ev.data.u64 = 1;
	epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->stopfd, &ev);
	ev.data.u64 = 2;
	epoll_ctl(srv->ep, EPOLL_CTL_ADD, gfd, &ev);

	while (running) {
		int n = epoll_wait(srv->ep, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err("%s: epoll_wait: %s\n", prog, strerror(errno));
			srv->error = 1;
			break;
		}
		for (int i = 0; i < n; i++) {
			uint64_t id = evs[i].data.u64;
			if (id == 1) {
				running = false;
			} else if (id == 2) {
				err("%s: server: guard timeout: clients did not finish, killing "
				    "them\n", prog);
				for (long k = 0; k < cfg.clients; k++)
					if (stats[k].pid > 0)
						kill(stats[k].pid, SIGKILL);
				srv->error = 1;
				stop_all_servers();
				running = false;
			} else if (id == 0) {
				int fd;
				while ((fd = accept_one(srv)) > 0) {
					struct conn *c = conn_new(srv, fd);
					if (!c) {
						close(fd);
						conn_closed();
						continue;
					}
					c->e.ep.events = EPOLLIN;
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					epoll_ctl(srv->ep, EPOLL_CTL_ADD, fd, &ev);
				}
			} else {
				struct conn *c = evs[i].data.ptr;
				uint32_t got = evs[i].events;
				int rc;
				uint32_t want = c->e.ep.events;
				if (got & EPOLLIN) {
					rc = conn_read(c);
					if (rc > 0) {
						*conn_woff(c) = 0;
						want = EPOLLOUT;
					}
				} else if (got & EPOLLOUT) {
					rc = conn_write(c, conn_woff(c));
					if (rc > 0) {
						c->done = 0;
						want = EPOLLIN;
					}
				} else {
					rc = -1;
				}
				if (rc < 0) {
					epoll_ctl(srv->ep, EPOLL_CTL_DEL, c->e.fd, NULL);
					close(c->e.fd);
					conn_closed();
					free(c);
					continue;
				}
				if (want != c->e.ep.events) {
					c->e.ep.events = want;
					ev.events = want;
					ev.data.ptr = c;
					epoll_ctl(srv->ep, EPOLL_CTL_MOD, c->e.fd, &ev);
				}
			}
		}
	}
	close(gfd);
	return NULL;
}

static int make_listener(int index)
{
	int fd;

	if (cfg.tcp) {
		struct sockaddr_in sin = {.sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int one = 1;

		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return -errno;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (cfg.threads > 1)
			setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		/* The first listener picks a free port; the others share it. */
		if (index > 0)
			sin.sin_port = ((struct sockaddr_in *)&srv_addr)->sin_port;
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
			goto fail;
		srv_addr_len = sizeof(sin);
		if (getsockname(fd, (struct sockaddr *)&srv_addr, &srv_addr_len) < 0)
			goto fail;
	} else {
		struct sockaddr_un sun = {.sun_family = AF_UNIX};
		size_t n = strlen(abstract_name);

		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return -errno;
		/* Abstract name: leading NUL, no file system entry to clean up. */
		memcpy(sun.sun_path + 1, abstract_name, n);
		srv_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
		if (bind(fd, (struct sockaddr *)&sun, srv_addr_len) < 0)
			goto fail;
		memcpy(&srv_addr, &sun, sizeof(sun));
	}
	if (listen(fd, cfg.clients < SOMAXCONN ? (int)cfg.clients : SOMAXCONN) < 0)
		goto fail;
	return fd;
fail:;
	int e = -errno;
	close(fd);
	return e;
}

/* ------------------------------------------------------------------------
 * Options and main
 */

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: %s [options]\n"
		"The echo-server benchmark: one server, N forked clients, ping-pong messages.\n"
		"Options:\n"
		"  -n, --num-clients N     number of client processes (1..%d, default 1)\n"
		"  -t, --runtime S         measured run time in seconds (1..86400, default 10)\n"
		"  -w, --max-wait MS       max random delay between a client's requests;\n"
		"                          0 sends the next request at once (default 0)\n"
		"      --tcp               TCP over 127.0.0.1 instead of an abstract unix socket\n"
		"      --payload BYTES     message size (default: \"Hello, this is <pid>\" + NUL)\n"
		"      --server-threads K  with --tcp: K dispatchers on K threads, SO_REUSEPORT\n"
		"      --raw               plain epoll without timeouts (the library-free limit)\n"
		"      --json              print one JSON object instead of the text summary\n"
		"  -q, --quiet             print only the result (and errors)\n"
		"  -v, --verbose           per-client messages\n"
		"  -d, --debug             per-request messages\n"
		"  -h, --help              print this help\n",
		prog, MAX_CLIENTS);
}

static int parse_opts(int argc, char *argv[])
{
	enum { OPT_TCP = 256, OPT_PAYLOAD, OPT_THREADS, OPT_RAW, OPT_JSON };
	static const struct option longopts[] = {
		{"num-clients", required_argument, NULL, 'n'},
		{"runtime", required_argument, NULL, 't'},
		{"max-wait", required_argument, NULL, 'w'},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"debug", no_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{"tcp", no_argument, NULL, OPT_TCP},
		{"payload", required_argument, NULL, OPT_PAYLOAD},
		{"server-threads", required_argument, NULL, OPT_THREADS},
		{"raw", no_argument, NULL, OPT_RAW},
		{"json", no_argument, NULL, OPT_JSON},
		{NULL, 0, NULL, 0},
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "n:t:w:qvdh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n':
			if (bench_parse_long(prog, "--num-clients", optarg, 1, MAX_CLIENTS,
					     &cfg.clients))
				return -1;
			break;
		case 't':
			if (bench_parse_long(prog, "--runtime", optarg, 1, 86400, &cfg.runtime_s))
				return -1;
			break;
		case 'w':
			if (bench_parse_long(prog, "--max-wait", optarg, 0, 60000,
					     &cfg.max_wait_ms))
				return -1;
			break;
		case 'q':
			cfg.verbosity = LOG_QUIET;
			break;
		case 'v':
			cfg.verbosity = LOG_VERBOSE;
			break;
		case 'd':
			cfg.verbosity = LOG_DEBUG;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case OPT_TCP:
			cfg.tcp = true;
			break;
		case OPT_PAYLOAD:
			if (bench_parse_long(prog, "--payload", optarg, 32, MAX_PAYLOAD,
					     &cfg.payload))
				return -1;
			break;
		case OPT_THREADS:
			if (bench_parse_long(prog, "--server-threads", optarg, 1, MAX_THREADS,
					     &cfg.threads))
				return -1;
			break;
		case OPT_RAW:
			cfg.raw = true;
			break;
		case OPT_JSON:
			cfg.json = true;
			break;
		default:
			usage(stderr);
			return -1;
		}
	}
	if (bench_no_operands(prog, argc, argv) < 0) {
		usage(stderr);
		return -1;
	}
	if (cfg.threads > 1 && !cfg.tcp) {
		fprintf(stderr, "%s: --server-threads > 1 needs --tcp (SO_REUSEPORT)\n", prog);
		return -1;
	}
	return 0;
}

int main(int argc, char *argv[])
{
	pid_t pids[MAX_CLIENTS];
	int rc, failed = 0;

	if (parse_opts(argc, argv) < 0)
		return 2;
	msg_len = cfg.payload ? (size_t)cfg.payload : 0;
	snprintf(abstract_name, sizeof(abstract_name), "vent-echo-bench-%ld", (long)getpid());

	/* The server holds one fd per client. */
	bench_raise_nofile();

	stats = mmap(NULL, sizeof(*stats) * (size_t)cfg.clients, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (stats == MAP_FAILED) {
		err("%s: mmap: %s\n", prog, strerror(errno));
		return 1;
	}
	for (long i = 0; i < cfg.threads; i++) {
		servers[i].listen_fd = make_listener((int)i);
		if (servers[i].listen_fd < 0) {
			err("%s: listen: %s\n", prog, strerror(-servers[i].listen_fd));
			return 1;
		}
	}

	/* Everyone starts together once all clients had time to connect. */
	t_start = bench_now_ns() + 100000000 + cfg.clients * 2000000LL;
	t_end = t_start + cfg.runtime_s * 1000000000LL;

	fflush(NULL);
	for (long i = 0; i < cfg.clients; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			err("%s: fork: %s\n", prog, strerror(errno));
			for (long k = 0; k < i; k++)
				kill(pids[k], SIGKILL);
			for (long k = 0; k < i; k++)
				waitpid(pids[k], NULL, 0);
			return 1;
		}
		if (pid == 0) {
			for (long k = 0; k < cfg.threads; k++)
				close(servers[k].listen_fd);
			_exit(client_main((int)i));
		}
		pids[i] = pid;
		stats[i].pid = pid;
	}

	double cpu0 = bench_cpu_s(RUSAGE_SELF);
	for (long i = 0; i < cfg.threads; i++) {
		struct server *srv = &servers[i];
		if (cfg.raw) {
			srv->ep = epoll_create1(EPOLL_CLOEXEC);
			srv->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
			if (srv->ep < 0 || srv->stopfd < 0) {
				err("%s: epoll/eventfd: %s\n", prog, strerror(errno));
				return 1;
			}
		} else {
			srv->dsp = new_dispatcher(CLOCK_MONOTONIC);
			if (!srv->dsp) {
				err("%s: new_dispatcher: %s\n", prog, strerror(errno));
				return 1;
			}
		}
	}
	void *(*fn)(void *) = cfg.raw ? raw_server_thread : vent_server_thread;
	for (long i = 1; i < cfg.threads; i++) {
		if ((rc = pthread_create(&servers[i].thread, NULL, fn, &servers[i])) != 0) {
			err("%s: pthread_create: %s\n", prog, strerror(rc));
			return 1;
		}
	}
	fn(&servers[0]);
	for (long i = 1; i < cfg.threads; i++)
		pthread_join(servers[i].thread, NULL);
	atomic_store(&servers_done, true);
	double cpu = bench_cpu_s(RUSAGE_SELF) - cpu0;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);

	/* Reap every client. */
	for (long i = 0; i < cfg.clients; i++) {
		int ws;
		while (waitpid(pids[i], &ws, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0 || stats[i].failed) {
			failed++;
			msg(LOG_NORMAL, "%s: client %ld (pid %ld) failed\n", prog, i,
			    (long)pids[i]);
		}
	}

	uint64_t server_requests = 0;
	for (long i = 0; i < cfg.threads; i++) {
		server_requests += servers[i].requests;
		failed += servers[i].error;
		if (cfg.raw) {
			close(servers[i].ep);
			close(servers[i].stopfd);
		} else {
			free_dispatcher(servers[i].dsp);
		}
		close(servers[i].listen_fd);
	}
	static struct bench_hist all;
	for (long i = 0; i < cfg.clients; i++)
		bench_hist_merge(&all, &stats[i].rtt);
	double rps = (double)all.count / (double)cfg.runtime_s;
	double p50 = bench_hist_quantile(&all, 0.50) / 1e3;
	double p99 = bench_hist_quantile(&all, 0.99) / 1e3;
	double pmax = bench_hist_quantile(&all, 1.0) / 1e3;
	const char *lib = cfg.raw ? "raw" : "vent";
	const char *transport = cfg.tcp ? "tcp" : "unix";

	if (cfg.json) {
		printf("{\"tool\":\"echo-bench\",\"lib\":\"%s\",\"transport\":\"%s\","
		       "\"clients\":%ld,\"server_threads\":%ld,\"payload\":%ld,"
		       "\"max_wait_ms\":%ld,\"runtime_s\":%ld,\"requests\":%" PRIu64 ","
		       "\"server_requests\":%" PRIu64 ",\"req_per_s\":%.1f,"
		       "\"rtt_p50_us\":%.2f,\"rtt_p99_us\":%.2f,\"rtt_max_us\":%.2f,"
		       "\"server_cpu_s\":%.3f,\"server_user_s\":%.3f,\"server_sys_s\":%.3f,"
		       "\"failed_clients\":%d}\n",
		       lib, transport, cfg.clients, cfg.threads,
		       cfg.payload,
		       cfg.max_wait_ms, cfg.runtime_s, all.count, server_requests, rps, p50, p99,
		       pmax, cpu, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
		       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, failed);
	} else {
		printf("echo-bench: %s %s, %s socket, %ld client%s, %ld server thread%s, "
		       "max-wait %ld ms, %ld s\n",
		       lib, cfg.raw ? "epoll (no library)" : vent_version(), transport,
		       cfg.clients, cfg.clients == 1 ? "" : "s", cfg.threads,
		       cfg.threads == 1 ? "" : "s", cfg.max_wait_ms, cfg.runtime_s);
		printf("  clients          %ld%s\n", cfg.clients,
		       failed ? " (some FAILED, see above)" : "");
		printf("  requests         %" PRIu64 "\n", all.count);
		printf("  requests/s       %.0f\n", rps);
		printf("  rtt p50/p99/max  %.1f / %.1f / %.1f us\n", p50, p99, pmax);
		printf("  server cpu       %.2f s (user %.2f, sys %.2f)\n", cpu,
		       ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
		       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
	}
	munmap(stats, sizeof(*stats) * (size_t)cfg.clients);
	return failed ? 1 : 0;
}
