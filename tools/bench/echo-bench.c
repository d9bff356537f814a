/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * echo-bench - the echo-server benchmark (minivent's echo test, measured).
 *
 * One server process forks N client processes. Each client connects to the
 * server (abstract AF_UNIX stream socket, or TCP on 127.0.0.1 with --tcp),
 * sends "Hello, this is <pid>" (padded to --payload bytes), waits for the
 * echo, checks it and repeats: at once with --max-wait=0, else after a
 * random 1..max-wait ms. Server and clients are written exactly as a
 * minivent program would be: one watcher per connection, EPOLLIN and
 * EPOLLOUT switched per step and a per-step timeout (1 s to send, 2 s to
 * receive) re-armed on every step.
 *
 * The event library is a driver (driver/driver.h: io_add, io_set, io_del,
 * loop_run, loop_stop): vent by default, any other with --lib. --raw
 * (--lib raw) runs the same protocol on plain epoll without timeouts,
 * making the same read/write/epoll_ctl(MOD) calls: the limit that library
 * overhead is measured against.
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
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-util.h"
#include "driver/driver.h"

#define BENCH_TOOL "echo-bench"
#define MAX_CLIENTS 4096
#define MAX_THREADS 64
#define MAX_PAYLOAD (1 << 20)
#define SEND_TMO_NS 1000000000LL
#define RECV_TMO_NS 2000000000LL
/* The server gives up this long after the clients should have stopped. */
#define GUARD_NS 10000000000LL

static const char *prog = BENCH_TOOL;

enum { LOG_QUIET, LOG_NORMAL, LOG_VERBOSE, LOG_DEBUG };

static struct {
	long clients;
	long runtime_s;
	long max_wait_ms;
	long payload;
	long threads;
	int verbosity;
	bool tcp;
	bool json;
	const char *lib;
} cfg = {
	.clients = 1,
	.runtime_s = 10,
	.max_wait_ms = 0,
	.payload = 0,
	.threads = 1,
	.verbosity = LOG_NORMAL,
	.lib = "vent",
};

static const struct bench_driver *drv;

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

/* A driver's error: a negative errno, or -1 from the libraries without one. */
static const char *drv_strerror(int rc)
{
	return rc < -1 ? strerror(-rc) : "failed";
}

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
	struct bench_io io; /* first */
	struct bench_loop *loop;
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

static void client_fail(struct client *c)
{
	c->st->failed = 1;
	drv->loop_stop(c->loop);
	drv->io_set(&c->io, 0, -1);
}

/* The minivent way: one callback, EPOLLIN/EPOLLOUT switched per step. */
static void client_cb(struct bench_io *io, uint32_t revents)
{
	struct client *c = (struct client *)io;
	uint32_t want = io->events;
	int64_t tmo;
	int rc;

	if (revents == 0 && io->events) {
		msg(LOG_NORMAL, "%s: client %d: timeout\n", prog, (int)c->st->pid);
		c->st->timeouts++;
		c->st->failed = 1;
		drv->loop_stop(c->loop);
		return;
	}
	if (revents & (EPOLLHUP | EPOLLERR)) {
		msg(LOG_NORMAL, "%s: client %d: server hung up\n", prog, (int)c->st->pid);
		client_fail(c);
		return;
	}
	if (revents == 0) {
		/* The random delay is over: send the next request. */
		want = EPOLLOUT;
		tmo = SEND_TMO_NS;
	} else if (revents & EPOLLOUT) {
		rc = client_write(c, io->fd);
		if (rc < 0) {
			client_fail(c);
			return;
		}
		if (rc > 0) {
			want = EPOLLIN;
			tmo = RECV_TMO_NS;
		} else {
			tmo = SEND_TMO_NS;
		}
	} else {
		rc = client_read(c, io->fd);
		if (rc < 0) {
			client_fail(c);
			return;
		}
		if (rc == 0) {
			tmo = RECV_TMO_NS;
		} else if (c->stop) {
			drv->loop_stop(c->loop);
			want = 0;
			tmo = -1;
		} else if (cfg.max_wait_ms == 0) {
			want = EPOLLOUT;
			tmo = SEND_TMO_NS;
		} else {
			want = 0;
			tmo = client_delay_ms(c) * 1000000LL;
		}
	}
	if ((rc = drv->io_set(io, want, tmo)) < 0) {
		msg(LOG_NORMAL, "%s: %s: io_set: %s\n", prog, drv->name, drv_strerror(rc));
		client_fail(c);
	}
}

static int run_client(struct client *c, int fd)
{
	int rc;

	c->loop = drv->loop_new();
	if (!c->loop) {
		err("%s: %s: loop_new: %s\n", prog, drv->name, strerror(errno));
		return 1;
	}
	c->io.fd = fd;
	c->io.cb = client_cb;
	if ((rc = drv->io_add(c->loop, &c->io, EPOLLOUT, SEND_TMO_NS)) < 0) {
		err("%s: %s: io_add: %s\n", prog, drv->name, drv_strerror(rc));
		drv->loop_free(c->loop);
		return 1;
	}
	/* A guard against a client that hangs: stop at t_end + GUARD_NS. */
	rc = drv->loop_run(c->loop, t_end + GUARD_NS);
	if (rc < 0)
		err("%s: %s: loop_run: %s\n", prog, drv->name, drv_strerror(rc));
	if (rc != 0)
		c->st->failed = 1;
	drv->io_del(&c->io);
	drv->loop_free(c->loop);
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
	rc = run_client(c, fd);
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
	struct bench_io io; /* first */
	struct server *srv;
	size_t len;
	size_t done;
	char buf[];
};

struct server {
	int listen_fd;
	int stop_fd; /* eventfd: stop_all_servers() from any thread */
	struct bench_loop *loop;
	struct bench_io listener, stopper;
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
		uint64_t one = 1;
		ssize_t r = write(servers[i].stop_fd, &one, sizeof(one));
		(void)r;
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
	ssize_t n = read(c->io.fd, c->buf + c->done, c->len - c->done);
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
	ssize_t n = write(c->io.fd, c->buf + *off, c->done - *off);
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

static void conn_close(struct conn *c)
{
	drv->io_del(&c->io);
	close(c->io.fd);
	conn_closed();
	free(c);
}

/* The receive timeout: the client may think for up to max-wait before it sends. */
static int64_t conn_recv_tmo(void)
{
	return RECV_TMO_NS + cfg.max_wait_ms * 1000000LL;
}

static void conn_cb(struct bench_io *io, uint32_t revents)
{
	struct conn *c = (struct conn *)io;
	uint32_t want = io->events;
	int64_t tmo;
	int rc;

	if (revents == 0) {
		msg(LOG_NORMAL, "%s: server: timeout on a connection\n", prog);
		conn_close(c);
		return;
	}
	if (revents & EPOLLIN) {
		rc = conn_read(c);
		if (rc < 0) {
			conn_close(c); /* the client is done */
			return;
		}
		if (rc > 0) {
			*conn_woff(c) = 0;
			want = EPOLLOUT;
			tmo = SEND_TMO_NS;
		} else {
			tmo = conn_recv_tmo();
		}
	} else if (revents & EPOLLOUT) {
		rc = conn_write(c, conn_woff(c));
		if (rc < 0) {
			conn_close(c);
			return;
		}
		if (rc > 0) {
			c->done = 0;
			want = EPOLLIN;
			tmo = conn_recv_tmo();
		} else {
			tmo = SEND_TMO_NS;
		}
	} else {
		conn_close(c); /* EPOLLHUP/EPOLLERR alone */
		return;
	}
	if (drv->io_set(io, want, tmo) < 0)
		conn_close(c);
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
	c->io.fd = fd;
	c->io.cb = conn_cb;
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

static void listen_cb(struct bench_io *io, uint32_t revents)
{
	struct server *srv = (struct server *)(void *)((char *)io - offsetof(struct server, listener));
	int fd, rc;

	(void)revents;
	while ((fd = accept_one(srv)) > 0) {
		struct conn *c = conn_new(srv, fd);
		if (!c) {
			close(fd);
			conn_closed();
			continue;
		}
		/* The first request comes at t_start: until then, plus the usual. */
		int64_t tmo = RECV_TMO_NS + 1000000000LL + (t_start - bench_now_ns());
		if ((rc = drv->io_add(srv->loop, &c->io, EPOLLIN, tmo)) < 0) {
			err("%s: %s: io_add: %s\n", prog, drv->name, drv_strerror(rc));
			close(fd);
			conn_closed();
			free(c);
		}
	}
}

static void stop_cb(struct bench_io *io, uint32_t revents)
{
	struct server *srv = (struct server *)(void *)((char *)io - offsetof(struct server, stopper));
	uint64_t x;
	ssize_t r = read(io->fd, &x, sizeof(x));

	(void)r;
	(void)revents;
	drv->loop_stop(srv->loop);
}

static void kill_clients(void)
{
	for (long i = 0; i < cfg.clients; i++)
		if (stats[i].pid > 0)
			kill(stats[i].pid, SIGKILL);
}

static void *server_thread(void *arg)
{
	struct server *srv = arg;
	int rc;

	srv->listener = (struct bench_io){.fd = srv->listen_fd, .cb = listen_cb};
	srv->stopper = (struct bench_io){.fd = srv->stop_fd, .cb = stop_cb};
	if ((rc = drv->io_add(srv->loop, &srv->listener, EPOLLIN, -1)) < 0 ||
	    (rc = drv->io_add(srv->loop, &srv->stopper, EPOLLIN, -1)) < 0) {
		err("%s: %s: io_add: %s\n", prog, drv->name, drv_strerror(rc));
		srv->error = 1;
		return NULL;
	}
	/* Guard: absolute, t_end + GUARD_NS. */
	rc = drv->loop_run(srv->loop, t_end + GUARD_NS);
	if (rc < 0) {
		err("%s: %s: loop_run: %s\n", prog, drv->name, drv_strerror(rc));
		srv->error = 1;
	} else if (rc > 0) {
		err("%s: server: guard timeout: clients did not finish, killing them\n", prog);
		kill_clients();
		srv->error = 1;
		stop_all_servers();
	}
	drv->io_del(&srv->listener);
	drv->io_del(&srv->stopper);
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
		"      --raw               plain epoll without timeouts (the library-free limit;\n"
		"                          the same as --lib raw)\n"
		"  -l, --lib NAME          event library driver (default vent; --list shows them)\n"
		"      --list              list the drivers built in\n"
		"      --json              print one JSON object instead of the text summary\n"
		"  -q, --quiet             print only the result (and errors)\n"
		"  -v, --verbose           per-client messages\n"
		"  -d, --debug             per-request messages\n"
		"  -h, --help              print this help\n",
		prog, MAX_CLIENTS);
}

static int parse_opts(int argc, char *argv[])
{
	enum { OPT_TCP = 256, OPT_PAYLOAD, OPT_THREADS, OPT_RAW, OPT_JSON, OPT_LIST };
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
		{"lib", required_argument, NULL, 'l'},
		{"list", no_argument, NULL, OPT_LIST},
		{NULL, 0, NULL, 0},
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "n:t:w:l:qvdh", longopts, NULL)) != -1) {
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
			cfg.lib = "raw";
			break;
		case 'l':
			cfg.lib = optarg;
			break;
		case OPT_LIST:
			bench_list_drivers();
			exit(0);
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
	drv = bench_pick_driver(BENCH_TOOL, cfg.lib, argv);
	if (drv && !drv->io_add) {
		fprintf(stderr, "%s: --lib: invalid value '%s' (no echo-bench hooks)\n", prog,
			cfg.lib);
		return -1;
	}
	return drv ? 0 : -1;
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
		srv->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (srv->stop_fd < 0) {
			err("%s: eventfd: %s\n", prog, strerror(errno));
			return 1;
		}
		srv->loop = drv->loop_new();
		if (!srv->loop) {
			err("%s: %s: loop_new: %s\n", prog, drv->name, strerror(errno));
			return 1;
		}
	}
	for (long i = 1; i < cfg.threads; i++) {
		if ((rc = pthread_create(&servers[i].thread, NULL, server_thread, &servers[i])) != 0) {
			err("%s: pthread_create: %s\n", prog, strerror(rc));
			return 1;
		}
	}
	server_thread(&servers[0]);
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
		drv->loop_free(servers[i].loop);
		close(servers[i].stop_fd);
		close(servers[i].listen_fd);
	}
	static struct bench_hist all;
	for (long i = 0; i < cfg.clients; i++)
		bench_hist_merge(&all, &stats[i].rtt);
	double rps = (double)all.count / (double)cfg.runtime_s;
	double p50 = bench_hist_quantile(&all, 0.50) / 1e3;
	double p99 = bench_hist_quantile(&all, 0.99) / 1e3;
	double pmax = bench_hist_quantile(&all, 1.0) / 1e3;
	const bool raw = strcmp(drv->name, "raw") == 0;
	const char *lib = drv->name;
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
		       lib, raw ? "epoll (no library)" : drv->version(), transport,
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
